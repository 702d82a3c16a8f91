#!/usr/bin/python3
"""The rest of Prometheus' HTTP API, side by side with a real Prometheus 2.42:
format_query gives the same text for short and long (split) expressions and the same
error type for bad ones; status/flags, status/config, status/runtimeinfo, targets,
rules, alerts, alertmanagers, targets/metadata and query_exemplars answer with
Prometheus' shapes (the same keys and JSON types), which Grafana's datasource and
promtool read.
"""
import os
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

LONG_SEL = 'node_filesystem_avail_bytes{fstype!~"tmpfs|overlay",mountpoint="/",instance=~"host-0.*"}'
FORMAT_QUERIES = [
    "up",
    "sum(rate(http_requests_total[5m]))",
    'sum by (job) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m]))',
    # Long enough to split: aggregations, binary operations, calls and parentheses.
    'sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!="",image!="",namespace=~"kube-.*"}[5m]))',
    'sum by (job) (rate(http_requests_total{code=~"5..",handler!="/metrics"}[5m])) / on (job) group_left () '
    'sum by (job) (rate(http_requests_total{handler!="/metrics"}[5m])) > bool 0.05',
    "(1 - (node_memory_MemAvailable_bytes{job=\"node\"} / node_memory_MemTotal_bytes{job=\"node\"})) * 100 "
    "> 90 and on (instance) up{job=\"node\"} == 1",
    'histogram_quantile(0.99, sum by (le, job) (rate(http_request_duration_seconds_bucket{job=~"api|web"}[5m])))',
    'label_replace(sum by (instance) (rate(node_network_receive_bytes_total{device!~"lo|veth.*"}[5m])), '
    '"host", "$1", "instance", "(.*):.*")',
    "max_over_time((" + LONG_SEL + " / 1024 / 1024)[1h:5m])",
    "-" + "sum(rate(" + LONG_SEL.replace("avail", "size") + "[5m]))",
    "topk(5, " + "sum by (instance) (" + LONG_SEL + " offset 1h) - sum by (instance) (" + LONG_SEL + "))",
    "count_values(\"value\", " + LONG_SEL + ")",
    'quantile(0.9, rate(http_requests_total{job="api",handler=~"/api/v1/(query|query_range|series|labels)"}[5m]))',
]
BAD_QUERIES = ["sum(", "rate(x)", "1 +", "foo{a=}"]


def shape(v):
    """The JSON type tree of v: dict keys with their shapes, list element shape."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return type(v).__name__


class PromApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = tsdbtest.Server().start()
        cls.prom = peers.Prometheus("global: {}\n")
        try:
            cls.prom.start()
        except Exception:
            cls.srv.cleanup()
            cls.prom.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        cls.prom.cleanup()

    def both(self, path, params=None):
        q = "?" + urllib.parse.urlencode(params) if params else ""
        a = self.srv.get(path + q)
        b = self.prom.get(path + q)
        return a, b

    def test_format_query_equals_prometheus(self):
        split = 0
        for q in FORMAT_QUERIES:
            a, b = self.both("/api/v1/format_query", {"query": q})
            self.assertEqual(b.status, 200, (q, b.text))
            self.assertEqual(a.status, 200, (q, a.text))
            want, got = b.json()["data"], a.json()["data"]
            self.assertEqual(got, want, "format_query(%r):\n--- tsdbd\n%s\n--- prometheus\n%s" % (q, got, want))
            split += "\n" in want
        self.assertGreaterEqual(split, 6, "too few queries long enough to split")
        # POST as a form works too.
        r = self.srv.post_form("/api/v1/format_query", {"query": "sum(rate(x[5m])) by (a)"})
        self.assertEqual(r.json()["data"], "sum by (a) (rate(x[5m]))")

    def test_format_query_errors_as_prometheus(self):
        for q in BAD_QUERIES:
            a, b = self.both("/api/v1/format_query", {"query": q})
            self.assertEqual((a.status, a.json()["errorType"]), (b.status, b.json()["errorType"]), q)
            self.assertEqual(a.json()["error"], b.json()["error"], q)

    def test_status_and_empty_endpoints_have_prometheus_shapes(self):
        for path in ("/api/v1/targets", "/api/v1/rules", "/api/v1/alerts", "/api/v1/alertmanagers",
                     "/api/v1/targets/metadata"):
            a, b = self.both(path)
            self.assertEqual(a.status, 200, (path, a.text))
            self.assertEqual(b.status, 200, (path, b.text))
            da, db = a.json()["data"], b.json()["data"]
            self.assertEqual(shape(da), shape(db), path)
        a, b = self.both("/api/v1/status/runtimeinfo")
        self.assertEqual(a.status, 200, a.text)
        ra, rb = a.json()["data"], b.json()["data"]
        self.assertEqual(sorted(ra), sorted(rb))
        for k in ra:
            self.assertEqual(type(ra[k]), type(rb[k]), k)
        self.assertGreaterEqual(ra["goroutineCount"], 1)
        a, b = self.both("/api/v1/status/config")
        self.assertEqual(shape(a.json()["data"]), shape(b.json()["data"]))
        self.assertIn("data-dir: ", a.json()["data"]["yaml"])

    def test_status_flags_lists_every_flag_in_force(self):
        srv = tsdbtest.Server(["--retention", "30d", "--retention.1h", "1y", "--workers", "3",
                               "--query.timeout", "90s", "--web.enable-admin-api"]).start()
        self.addCleanup(srv.cleanup)
        r = srv.get("/api/v1/status/flags")
        self.assertEqual(r.status, 200, r.text)
        f = r.json()["data"]
        self.assertTrue(all(isinstance(v, str) for v in f.values()))
        self.assertEqual(f["retention"], "30d")
        self.assertEqual(f["retention.raw"], "30d")
        self.assertEqual(f["retention.5m"], "30d")
        self.assertEqual(f["retention.1h"], "1y")
        self.assertEqual(f["workers"], "3")
        self.assertEqual(f["query.timeout"], "1m30s")
        self.assertEqual(f["web.enable-admin-api"], "true")
        self.assertEqual(f["sync"], "always")
        self.assertEqual(f["max-labels"], "64")  # the default in force, not "0"
        # Every flag --help documents is listed.
        helptext = subprocess.run([srv.binary, "--help"], stdout=subprocess.PIPE, text=True, check=True).stdout
        for name in f:
            self.assertIn("--" + name, helptext)
        rt = srv.get("/api/v1/status/runtimeinfo").json()["data"]
        self.assertEqual(rt["storageRetention"], "30d")

    def test_status_storage_lists_partitions_and_tiers(self):
        srv = tsdbtest.Server(["--partition", "1h"]).start()
        self.addCleanup(srv.cleanup)
        now = int(time.time()) // 3600 * 3600
        # Three hours of a 15 s series: three partitions, the older two closed.
        pts = [((now - 3 * 3600 + i * 15) * 1000, float(i)) for i in range(3 * 240)]
        srv.import_jsonl([tsdbtest.jsonl_line({"__name__": "m", "a": "b"}, pts)])
        deadline = time.monotonic() + 20  # sealed chunks reach their partitions within a second
        while True:
            d = srv.get("/api/v1/status/storage").json()["data"]
            if len(d["partitions"]) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        starts = [p["start"] for p in d["partitions"]]
        self.assertEqual(starts, sorted(starts))
        self.assertGreaterEqual(len(starts), 3)
        for p in d["partitions"]:
            self.assertEqual(p["end"] - p["start"], 3600)
            self.assertIn(p["compacted"], (True, False, None))
        # The newest one is being written: open, not compacted, no tiers yet.
        newest = d["partitions"][-1]
        self.assertEqual((newest["open"], newest["compacted"], newest["tiers"]), (True, False, None))
        self.assertEqual(d["totals"]["series"], 1)
        self.assertEqual(d["totals"]["partitions_bytes"], sum(p["bytes"] for p in d["partitions"]))
        # After a compaction (tsdbctl, server stopped) the closed ones carry their tiers.
        srv.stop()
        rc = subprocess.run([os.path.join(tsdbtest.BUILD, "tsdbctl"), "compact", "--data-dir", srv.data_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE).returncode
        self.assertEqual(rc, 0)
        srv.start()
        d = srv.get("/api/v1/status/storage").json()["data"]
        tiered = [p for p in d["partitions"] if p["tiers"]]
        self.assertGreaterEqual(len(tiered), 2)
        self.assertTrue(all(p["tiers"]["1h"]["rows"] >= 1 and p["tiers"]["1h"]["bytes"] > 0 for p in tiered))
        self.assertEqual(d["totals"]["tier_1h_bytes"], sum(p["tiers"]["1h"]["bytes"] for p in tiered))

    def test_query_exemplars_is_empty_with_a_warning(self):
        r = self.srv.get("/api/v1/query_exemplars?" + urllib.parse.urlencode(
            {"query": "up", "start": "0", "end": "100"}))
        self.assertEqual(r.status, 200, r.text)
        o = r.json()
        self.assertEqual(o["data"], [])
        self.assertTrue(any("not stored" in w for w in o.get("warnings", [])), o)
        p = self.prom.get("/api/v1/query_exemplars?" + urllib.parse.urlencode(
            {"query": "up", "start": "0", "end": "100"}))
        self.assertEqual(p.json()["data"], [])
        bad = "/api/v1/query_exemplars?query=sum("
        r, p = self.srv.get(bad), self.prom.get(bad)
        self.assertEqual((r.status, r.json()["errorType"]), (400, "bad_data"))
        self.assertEqual(r.json()["error"], p.json()["error"])
        r = self.srv.get("/api/v1/query_exemplars?query=up&start=x")
        self.assertEqual(r.status, 400)


if __name__ == "__main__":
    peers.run_main()
