#!/usr/bin/python3
"""Tenants (--tenant-header X-Scope-OrgID): every write lands in the tenant the header
names, and a tenant sees only its own series on every read endpoint: query,
query_range, series, labels, label values, metadata, status/tsdb, export, remote read,
the Grafana JSON endpoints, and the admin delete. Data written before tenants were
turned on belongs to the default tenant. A client cannot pick another tenant with a
__tenant__ label, and an invalid tenant name gets 400.
"""
import json
import os
import sys
import unittest
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

H = "X-Scope-OrgID"
RW = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class TenantsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = tsdbtest.now_ms() - 60000
        s = tsdbtest.Server()
        s.start()
        # before tenants: this becomes the default tenant's
        r = s.remote_write([({"__name__": "legacy", "k": "x"}, [(cls.t, 7.0)])])
        assert r.status == 204, r
        s.stop()
        s.args = ["--tenant-header", H, "--web.enable-admin-api"]
        s.start()
        cls.s = s
        t = cls.t

        def rw(tenant, series, metadata=()):
            h = dict(RW)
            if tenant:
                h[H] = tenant
            r = s.post("/api/v1/write", tsdbtest.write_request(series, metadata), h)
            assert r.status == 204, r
        rw("team-a", [({"__name__": "m", "k": "a", "a_only": "1"}, [(t, 1.0)]),
                      ({"__name__": "only_a"}, [(t, 11.0)]),
                      # a client's own __tenant__ label is replaced by its tenant
                      ({"__name__": "spoof", "__tenant__": "team-b"}, [(t, 5.0)])],
           [("only_a", 2, "A's gauge.", "")])
        # team-b writes through line protocol (m_v) and JSON import
        r = s.post("/write", ("m,k=b v=2 %d" % (t * 1000000)).encode(),
                   {H: "team-b"}, params={"precision": "ns"})
        assert r.status == 204, r
        r = s.post("/api/v1/import", (json.dumps({"metric": {"__name__": "m", "k": "b2"},
                                                  "values": [3], "timestamps": [t]}) + "\n").encode(),
                   {H: "team-b"})
        assert r.status == 204, r
        rw(None, [({"__name__": "m", "k": "d"}, [(t, 4.0)])])

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def get(self, tenant, path, params=None):
        return self.s.request("GET", path, params, headers={H: tenant} if tenant else None)

    def api(self, tenant, path, params=None):
        r = self.get(tenant, path, params)
        self.assertEqual(r.status, 200, r)
        return r.json()["data"]

    def values(self, tenant, query):
        d = self.api(tenant, "/api/v1/query", {"query": query, "time": "%.3f" % (self.t / 1000)})
        return sorted((x["metric"].get("k", x["metric"].get("__name__")), x["value"][1])
                      for x in d["result"])

    def test_query_and_range(self):
        self.assertEqual(self.values("team-a", "m"), [("a", "1")])
        self.assertEqual(self.values("team-b", "m"), [("b2", "3")])
        self.assertEqual(self.values("team-b", "m_v"), [("b", "2")])  # line protocol
        self.assertEqual(self.values(None, "m"), [("d", "4")])
        self.assertEqual(self.values("default", "m"), [("d", "4")])  # the same tenant
        self.assertEqual(self.values(None, "legacy"), [("x", "7")])
        self.assertEqual(self.values("team-a", "legacy"), [])
        d = self.api("team-a", "/api/v1/query", {"query": "sum(m) + count(only_a)",
                                                 "time": "%.3f" % (self.t / 1000)})
        self.assertEqual([x["value"][1] for x in d["result"]], ["2"])
        self.assertEqual(self.values("team-a", 'sum(m{__tenant__="team-b"})'), [])
        # the spoofed label landed in team-a, hidden
        d = self.api("team-a", "/api/v1/query", {"query": "spoof", "time": "%.3f" % (self.t / 1000)})
        self.assertEqual([x["metric"] for x in d["result"]], [{"__name__": "spoof"}])
        self.assertEqual(self.values("team-b", "spoof"), [])
        d = self.api("team-b", "/api/v1/query_range", {"query": "sum(m) + sum(m_v)", "start": self.t / 1000,
                                                       "end": self.t / 1000 + 60, "step": 30})
        self.assertEqual(d["result"][0]["values"][0][1], "5")
        for r in d["result"]:
            self.assertNotIn("__tenant__", r["metric"])

    def test_line_protocol_cache_per_tenant(self):
        """The same line-protocol bytes from two tenants are two series, also once the
        ingest cache knows the line (the second round)."""
        for rnd in range(2):
            for i, tenant in enumerate(("team-c", "team-d")):
                line = "lpc,k=z v=%d %d" % (10 * rnd + i, (self.t + 1000 * rnd) * 1000000)
                r = self.s.post("/write", line.encode(), {H: tenant}, params={"precision": "ns"})
                self.assertEqual(r.status, 204, r)
        for i, tenant in enumerate(("team-c", "team-d")):
            d = self.api(tenant, "/api/v1/query_range", {"query": "lpc_v", "start": self.t / 1000,
                                                         "end": self.t / 1000 + 1, "step": 1})
            self.assertEqual([(x["metric"], [v for _, v in x["values"]]) for x in d["result"]],
                             [({"__name__": "lpc_v", "k": "z"}, [str(i), str(10 + i)])])
        self.assertEqual(self.values(None, "lpc_v"), [])

    def test_lookups(self):
        self.assertEqual(self.api("team-a", "/api/v1/labels"), ["__name__", "a_only", "k"])
        self.assertEqual(self.api("team-b", "/api/v1/labels"), ["__name__", "k"])
        self.assertEqual(self.api("team-a", "/api/v1/label/__name__/values"), ["m", "only_a", "spoof"])
        self.assertEqual(self.api(None, "/api/v1/label/__name__/values"), ["legacy", "m"])
        self.assertEqual(self.api("team-b", "/api/v1/label/k/values"), ["b", "b2"])
        self.assertEqual(self.api("team-b", "/api/v1/label/__tenant__/values"), [])
        self.assertEqual(self.api("team-b", "/api/v1/series", {"match[]": "m"}),
                         [{"__name__": "m", "k": "b2"}])
        self.assertEqual(self.api("team-a", "/api/v1/series", {"match[]": '{__name__=~".+"}'}),
                         [{"__name__": "m", "a_only": "1", "k": "a"}, {"__name__": "only_a"},
                          {"__name__": "spoof"}])
        self.assertEqual(list(self.api("team-a", "/api/v1/metadata")), ["only_a"])
        self.assertEqual(self.api("team-b", "/api/v1/metadata"), {})
        st = self.api("team-b", "/api/v1/status/tsdb")
        self.assertEqual(st["headStats"]["numSeries"], 2)
        self.assertEqual(sorted(x["name"] for x in st["seriesCountByMetricName"]), ["m", "m_v"])

    def test_export_and_remote_read(self):
        r = self.get("team-a", "/api/v1/export", {"match[]": '{__name__=~".+"}'})
        self.assertEqual(r.status, 200, r)
        got = sorted(json.loads(l)["metric"]["__name__"] for l in r.text.splitlines())
        self.assertEqual(got, ["m", "only_a", "spoof"])
        body = tsdbtest.read_request([(self.t - 1000, self.t + 1000, [(0, "__name__", "m")])])
        for tenant, want in (("team-a", ["a"]), ("team-b", ["b2"]), (None, ["d"])):
            h = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                 "X-Prometheus-Remote-Read-Version": "0.1.0"}
            if tenant:
                h[H] = tenant
            r = self.s.post("/api/v1/read", body, h)
            self.assertEqual(r.status, 200, r)
            res = tsdbtest.read_response(r.body)
            ks = sorted({l.value for ts in res.results[0].timeseries for l in ts.labels if l.name == "k"})
            self.assertEqual(ks, want, tenant)
            self.assertFalse([l for ts in res.results[0].timeseries for l in ts.labels
                              if l.name == "__tenant__"])

    def test_grafana(self):
        def gf(tenant, path, obj):
            h = {"Content-Type": "application/json"}
            if tenant:
                h[H] = tenant
            r = self.s.post("/grafana" + path, json.dumps(obj).encode(), h)
            self.assertEqual(r.status, 200, r)
            return r.json()
        self.assertEqual(sorted(x["value"] for x in gf("team-b", "/metrics", {})), ["m", "m_v"])
        self.assertEqual(sorted(x["text"] for x in gf("team-a", "/tag-keys", {})),
                         ["__name__", "a_only", "k"])
        self.assertEqual(sorted(x["text"] for x in gf("team-b", "/tag-values", {"key": "k"})), ["b", "b2"])
        q = {"range": {"from": iso(self.t - 60000), "to": iso(self.t + 60000)}, "intervalMs": 60000,
             "maxDataPoints": 10, "targets": [{"refId": "A", "target": "m"}]}
        res = gf("team-a", "/query", q)
        self.assertEqual([x["target"] for x in res], ['m{a_only="1", k="a"}'])
        v = gf("team-b", "/variable", {"payload": {"target": "label_values(m, k)"}})
        self.assertEqual(sorted(x["text"] for x in v), ["b2"])

    def test_bad_tenant_and_delete(self):
        for bad in ("..", "a b", "x" * 151, "é"):
            r = self.s.post("/api/v1/write", tsdbtest.write_request([({"__name__": "z"}, [(self.t, 1.0)])]),
                            dict(RW, **{H: bad}))
            self.assertEqual(r.status, 400, bad)
            self.assertIn("invalid tenant", r.text)
            r = self.s.request("GET", "/api/v1/query", {"query": "1"}, headers={H: bad})
            self.assertEqual(r.status, 400, bad)
        # team-c deletes m: nobody else's m goes
        r = self.s.request("POST", "/api/v1/admin/tsdb/delete_series", {"match[]": "m"},
                           headers={H: "team-c"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.values("team-b", "m"), [("b2", "3")])
        self.assertEqual(self.values(None, "m"), [("d", "4")])
        self.assertEqual(self.values("team-c", "m"), [])


class TenantLimitsTest(unittest.TestCase):
    """--tenant.max-series and --tenant.max-samples-per-second: each tenant on its own."""

    def setUp(self):
        self.s = tsdbtest.Server(["--tenant-header", H, "--tenant.max-series", "2",
                                  "--tenant.max-samples-per-second", "1000"]).start()

    def tearDown(self):
        self.s.cleanup()

    def rw(self, tenant, series):
        return self.s.post("/api/v1/write", tsdbtest.write_request(series), dict(RW, **{H: tenant}))

    def test_series_per_tenant(self):
        t = tsdbtest.now_ms()
        for tenant in ("x", "y"):
            r = self.rw(tenant, [({"__name__": "m", "k": str(i)}, [(t, 1.0)]) for i in range(2)])
            self.assertEqual(r.status, 204, r)
        r = self.rw("x", [({"__name__": "m", "k": "2"}, [(t, 1.0)]), ({"__name__": "m", "k": "0"}, [(t + 1, 2.0)])])
        self.assertEqual(r.status, 400, r)
        self.assertIn("tenant series limit reached", r.text)
        self.assertIn("1 samples stored", r.text)
        m = peers.parse_metrics(self.s.get("/metrics").text)
        self.assertEqual(peers.metric(m, "tsdb_requests_limited_total", limit="tenant_series"), 1)
        self.assertEqual(peers.metric(m, "tsdb_tenant_series_refused_total", tenant="x"), 1)
        self.assertEqual(peers.metric(m, "tsdb_tenant_series_refused_total", tenant="y"), 0)

    def test_rate_per_tenant(self):
        t = tsdbtest.now_ms() - 600000
        batch = [({"__name__": "r", "k": str(i)}, [(t + j, 1.0) for j in range(500)]) for i in range(2)]
        r = self.rw("x", batch)  # 1,000 samples: the whole burst
        self.assertEqual(r.status, 204, r)
        r = self.rw("x", [({"__name__": "r", "k": "0"}, [(t + 1000 + j, 1.0) for j in range(1000)])])
        self.assertEqual(r.status, 429, r)
        self.assertIn("Retry-After", {k.title(): v for k, v in r.headers.items()})
        self.assertIn("ingestion rate limit exceeded", r.text)
        r = self.rw("y", batch)  # another tenant: its own budget
        self.assertEqual(r.status, 204, r)
        got = self.s.request("GET", "/api/v1/query", {"query": "count_over_time(r[20m])"},
                             headers={H: "x"}).json()["data"]["result"]
        self.assertEqual(sorted(x["value"][1] for x in got), ["500", "500"])  # nothing of the 429
        m = peers.parse_metrics(self.s.get("/metrics").text)
        self.assertEqual(peers.metric(m, "tsdb_requests_limited_total", limit="tenant_rate"), 1)
        # and per tenant
        self.assertEqual(peers.metric(m, "tsdb_tenant_requests_limited_total", tenant="x",
                                      limit="tenant_rate"), 1)
        self.assertEqual(peers.metric(m, "tsdb_tenant_samples_ingested_total", tenant="x"), 1000)
        self.assertEqual(peers.metric(m, "tsdb_tenant_samples_ingested_total", tenant="y"), 1000)


class TenantNewSeriesRateTest(unittest.TestCase):
    def test_new_series_per_minute(self):
        s = tsdbtest.Server(["--tenant-header", H, "--tenant.max-new-series-per-minute", "3"])
        try:
            s.start()
            t = tsdbtest.now_ms()

            def rw(tenant, ks, v=1.0):
                return s.post("/api/v1/write", tsdbtest.write_request(
                    [({"__name__": "n", "k": k}, [(t, v)]) for k in ks]), dict(RW, **{H: tenant}))
            r = rw("x", ["0", "1", "2", "3", "4"])  # a burst of 3: two refused
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.headers.get("retry-after"), "60")
            self.assertIn("new-series rate limit", r.text)
            self.assertIn("3 samples stored", r.text)
            self.assertEqual(rw("x", ["0", "1", "2"]).status, 204)  # existing: fine
            self.assertEqual(rw("y", ["0", "1", "2"]).status, 204)  # another tenant
            m = peers.parse_metrics(s.get("/metrics").text)
            self.assertEqual(peers.metric(m, "tsdb_requests_limited_total", limit="tenant_new_series"), 1)
        finally:
            s.cleanup()


class TenantRetentionTest(unittest.TestCase):
    def test_retention_rule_per_tenant(self):
        s = tsdbtest.Server(["--tenant-header", H])
        try:
            s.start()
            day = 86400000
            old = (tsdbtest.now_ms() // day - 3) * day + 3600000  # three days ago
            for tenant in ("ci", "keep", None):
                h = dict(RW, **({H: tenant} if tenant else {}))
                r = s.post("/api/v1/write", tsdbtest.write_request(
                    [({"__name__": "old"}, [(old + i * 60000, 1.0) for i in range(10)])]), h)
                self.assertEqual(r.status, 204, r)
            s.stop()
            rules = os.path.join(s.tmp, "rules.yml")
            with open(rules, "w") as f:
                f.write("'{__tenant__=\"ci\"}': 1d\n'{__name__=~\".+\", __tenant__=\"\"}': 1d\n")
            s.args += ["--retention.config", rules]
            s.start()

            def n(tenant):
                r = s.request("GET", "/api/v1/query", {"query": "count_over_time(old[1h])",
                                                      "time": "%.3f" % ((old + 600000) / 1000)},
                              headers={H: tenant} if tenant else None)
                res = r.json()["data"]["result"]
                return res[0]["value"][1] if res else None
            self.assertEqual((n("ci"), n("keep"), n(None)), (None, "10", None))
        finally:
            s.cleanup()


if __name__ == "__main__":
    peers.run_main()
