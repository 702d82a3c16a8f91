#!/usr/bin/python3
"""Prometheus HA pairs: two replicas, one copy (--ha.cluster-label, --ha.replica-label,
--ha.failover-timeout).

Two writers (integration):
- replicas "a" and "b" of cluster "c1" write the same series, b's clock 40 s ahead and
  its scrapes offset: the first to write is elected, its series are stored without the
  replica label (`__replica__`, Cortex's usual name), the other's requests answer 202 and
  are counted in tsdb_ha_samples_dropped_total{cluster,replica}; count() is 1, not 2;
- a second cluster elects on its own; series without the cluster label pass as they are;
- the elected replica stops: within the failover timeout (by tsdbd's clock) the other is
  elected, the stored series has no gap longer than the timeout plus a scrape interval,
  its timestamps only grow and each sample comes from one replica (values tell them
  apart), never both for the same series and time;
- a restart keeps the election (/api/v1/status/ha, /metrics);
- with tenants, each tenant elects apart.

Two real Prometheus replicas (e2e, Debian's prometheus and node_exporter): both scrape
the same node_exporter with external_labels {cluster, replica} and remote-write to
tsdbd: count(up) is 1, and killing the elected replica hands over within the timeout.
"""
import os
import signal
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

HD = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
      "X-Prometheus-Remote-Write-Version": "0.1.0"}
TIMEOUT_S = 3


def metric(srv, name, **labels):
    r = srv.get("/metrics")
    assert r.status == 200, r
    return peers.metric(peers.parse_metrics(r.text), name, **labels)


def query(srv, q, t=None):
    p = {"query": q}
    if t is not None:
        p["time"] = "%.3f" % t
    r = srv.get("/api/v1/query?" + urllib.parse.urlencode(p))
    assert r.status == 200, r
    return r.json()["data"]["result"]


class Writer(threading.Thread):
    """One replica: every 0.25 s (a bounded number of times) writes the next sample of
    `up` and `reqs_total` for cluster c1, with its own clock offset and value parity."""

    def __init__(self, srv, replica, skew_ms, parity, extra=None):
        super().__init__(daemon=True)
        self.srv, self.replica, self.skew, self.parity = srv, replica, skew_ms, parity
        self.stop_ev = threading.Event()
        self.statuses = []
        self.extra = extra or {}

    def run(self):
        k = 0
        while not self.stop_ev.is_set() and k < 400:
            t = tsdbtest.now_ms() - 60000 + self.skew
            v = float(2 * k + self.parity)
            labels = {"cluster": "c1", "__replica__": self.replica, "job": "node"}
            labels.update(self.extra)
            series = [(dict(labels, __name__="up"), [(t, 1.0)]),
                      (dict(labels, __name__="reqs_total"), [(t, v)])]
            r = self.srv.post("/api/v1/write", tsdbtest.write_request(series), HD)
            self.statuses.append((time.monotonic(), r.status))
            k += 1
            self.stop_ev.wait(0.25)


class TwoWriters(unittest.TestCase):
    def test_one_copy_and_failover(self):
        srv = peers.Tsdbd(["--ha.cluster-label", "cluster", "--ha.replica-label", "__replica__",
                           "--ha.failover-timeout", "%ds" % TIMEOUT_S], name="ha")
        srv.start()
        try:
            a = Writer(srv, "a", 0, 0)
            a.start()
            time.sleep(0.6)  # a writes first: a is elected
            b = Writer(srv, "b", 40000, 1)
            b.start()
            time.sleep(2.0)
            self.assertEqual({s for _, s in a.statuses}, {204})
            self.assertEqual({s for _, s in b.statuses}, {202})
            res = query(srv, "count(up)")
            self.assertEqual(res[0]["value"][1], "1")
            res = query(srv, "up")
            self.assertEqual(res[0]["metric"], {"__name__": "up", "cluster": "c1", "job": "node"})
            self.assertGreater(metric(srv, "tsdb_ha_samples_dropped_total", cluster="c1", replica="b"), 0)
            self.assertEqual(metric(srv, "tsdb_ha_elected_replica", cluster="c1", replica="a"), 1)
            # Another cluster elects on its own; series without the cluster label pass.
            t = tsdbtest.now_ms() - 60000
            r = srv.post("/api/v1/write", tsdbtest.write_request(
                [({"__name__": "up", "cluster": "c2", "__replica__": "b", "job": "x"}, [(t, 1.0)]),
                 ({"__name__": "plain", "__replica__": "z"}, [(t, 1.0)])]), HD)
            self.assertEqual(r.status, 204, r)
            self.assertEqual(len(query(srv, 'up{cluster="c2"}')), 1)
            self.assertEqual(query(srv, "plain")[0]["metric"], {"__name__": "plain", "__replica__": "z"})

            # a stops: b takes over within the timeout (and a little scheduling slack).
            a.stop_ev.set()
            a.join(10)
            stopped = time.monotonic()
            deadline = stopped + TIMEOUT_S + 5
            while time.monotonic() < deadline and not any(s == 204 for _, s in b.statuses[-3:]):
                time.sleep(0.1)
            took = next((m for m, s in b.statuses if s == 204), None)
            self.assertIsNotNone(took, "b never elected")
            self.assertLess(took - stopped, TIMEOUT_S + 2)
            print("\nb elected %.2f s after a stopped (timeout %d s)" % (took - stopped, TIMEOUT_S),
                  file=sys.stderr)
            self.assertGreaterEqual(took - stopped, TIMEOUT_S - 0.5)
            time.sleep(1.0)
            b.stop_ev.set()
            b.join(10)
            self.assertEqual(metric(srv, "tsdb_ha_failovers_total", cluster="c1"), 1)

            # The stored series: times only grow, a's values (even) then b's (odd), no
            # gap longer than the timeout plus b's 40 s clock lead (tsdbd judges by its
            # own clock; the data keeps each replica's timestamps).
            got = peers.export(srv, 'reqs_total{cluster="c1"}')
            self.assertEqual(len(got), 1)
            pts = list(got.values())[0]
            ts = [t for t, _ in pts]
            self.assertEqual(ts, sorted(set(ts)))
            parity = [int(v) % 2 for _, v in pts]
            switch = parity.index(1)
            self.assertEqual(set(parity[:switch]), {0})
            self.assertEqual(set(parity[switch:]), {1})
            gap = ts[switch] - ts[switch - 1]
            self.assertLess(gap, (TIMEOUT_S + 2) * 1000 + 40000)

            # A restart keeps the election.
            srv.stop()
            srv.start()
            st = srv.get("/api/v1/status/ha").json()["data"]
            c1 = [c for c in st["clusters"] if c["cluster"] == "c1"][0]
            self.assertEqual((c1["replica"], c1["failovers"]), ("b", 1))
            t = tsdbtest.now_ms() - 60000 + 50000
            r = srv.post("/api/v1/write", tsdbtest.write_request(
                [({"__name__": "up", "cluster": "c1", "__replica__": "a", "job": "node"}, [(t, 1.0)])]), HD)
            self.assertEqual(r.status, 202, r)
        finally:
            srv.stop()
            srv.cleanup()

    def test_tenants_elect_apart(self):
        srv = peers.Tsdbd(["--ha.cluster-label", "cluster", "--ha.replica-label", "replica",
                           "--tenant-header", "X-Scope-OrgID"], name="ha-tenants")
        srv.start()
        try:
            t = tsdbtest.now_ms() - 60000
            for tenant, rep, want in (("t1", "a", 204), ("t2", "b", 204), ("t1", "b", 202), ("t2", "a", 202)):
                body = tsdbtest.write_request([({"__name__": "up", "cluster": "c", "replica": rep}, [(t, 1.0)])])
                r = srv.post("/api/v1/write", body, dict(HD, **{"X-Scope-OrgID": tenant}))
                self.assertEqual(r.status, want, (tenant, rep, r))
            st = srv.get("/api/v1/status/ha").json()["data"]
            self.assertEqual(sorted((c["tenant"], c["replica"]) for c in st["clusters"]),
                             [("t1", "a"), ("t2", "b")])
            self.assertEqual(metric(srv, "tsdb_ha_samples_dropped_total", tenant="t1", cluster="c",
                                    replica="b"), 1)
        finally:
            srv.stop()
            srv.cleanup()

    def test_flags(self):
        for args in (["--ha.cluster-label", "cluster"], ["--ha.replica-label", "r"],
                     ["--ha.cluster-label", "c", "--ha.replica-label", "c"],
                     ["--ha.cluster-label", "1x", "--ha.replica-label", "r"],
                     ["--ha.cluster-label", "c", "--ha.replica-label", "r", "--ha.failover-timeout", "0"]):
            srv = peers.Tsdbd(args, name="ha-flags")
            try:
                srv.spawn()
                self.assertEqual(srv.proc.wait(20), 2, args)
            finally:
                srv.cleanup()


def thanos_dedup(a, b, counter=False):
    """Thanos' dedup iterator over two replicas' [(t, v)], written from its description:
    both move past the last point plus their penalty, the earlier wins (a on a tie),
    the other is penalised by twice the step (5 s at first); for counters a replica
    switched to that reads lower than the last value is raised by the difference."""
    out, last, pa, pb, ia, ib, use_a = [], None, 0, 0, 0, 0, True
    add = [0.0, 0.0]
    while True:
        frm = float("-inf") if last is None else last + 1
        while ia < len(a) and a[ia][0] < frm + pa:
            ia += 1
        while ib < len(b) and b[ib][0] < frm + pb:
            ib += 1
        ha, hb = ia < len(a), ib < len(b)
        if not ha and not hb:
            return out
        if not ha:
            pick, pb = False, 0
        elif not hb:
            pick, pa = True, 0
        else:
            pick = a[ia][0] <= b[ib][0]
            t = a[ia][0] if pick else b[ib][0]
            pen = 5000 if last is None else 2 * (t - last)
            if pick:
                pb, pa = pen, 0
            else:
                pa, pb = pen, 0
        if counter and out and pick != use_a:
            lv = out[-1][1]
            if ha and a[ia][1] + add[0] < lv:
                add[0] += lv - (a[ia][1] + add[0])
            if hb and b[ib][1] + add[1] < lv:
                add[1] += lv - (b[ib][1] + add[1])
        use_a = pick
        t, v = (a[ia][0], a[ia][1] + add[0]) if pick else (b[ib][0], b[ib][1] + add[1])
        out.append((t, v))
        last = t


class QueryTimeDedup(unittest.TestCase):
    """--query.replica-label and dedup=: Thanos Query's merging at query time, for data
    written before the tracker was on (or by stores tsdbd does not control)."""

    def test_merge_equals_thanos_algorithm(self):
        srv = peers.Tsdbd(["--query.replica-label", "replica", "--query.replica-label", "rep2"],
                          name="ha-dedup")
        srv.start()
        try:
            t0 = (tsdbtest.now_ms() - 3600000) // 1000 * 1000
            # a: 15 s scrapes with a 3-minute hole; b: offset 7 s, its counter 2 behind
            # a's (it started later), with its own hole; c: another job, one replica.
            a = [(t0 + i * 15000, 10.0 * i) for i in range(200) if not 40 <= i < 52]
            b = [(t0 + 7000 + i * 15000, 10.0 * i - 2) for i in range(200) if not 120 <= i < 130]
            lines = [tsdbtest.jsonl_line({"__name__": "c_total", "job": "x", "replica": "a"}, a),
                     tsdbtest.jsonl_line({"__name__": "c_total", "job": "x", "replica": "b"}, b),
                     tsdbtest.jsonl_line({"__name__": "c_total", "job": "y", "rep2": "only"}, a)]
            r = srv.post("/api/v1/import", "\n".join(lines).encode())
            self.assertEqual(r.status, 204, r)

            def q(expr, t, dedup=None):
                p = {"query": expr, "time": "%.3f" % (t / 1000)}
                if dedup is not None:
                    p["dedup"] = dedup
                r = srv.get("/api/v1/query?" + urllib.parse.urlencode(p))
                self.assertEqual(r.status, 200, r)
                return r.json()["data"]["result"]
            end = t0 + 200 * 15000
            got = q("c_total[60m]", end)
            self.assertEqual(sorted(tuple(sorted(x["metric"].items())) for x in got),
                             [(("__name__", "c_total"), ("job", "x")), (("__name__", "c_total"), ("job", "y"))])
            x = [s for s in got if s["metric"]["job"] == "x"][0]
            pts = [(round(float(t) * 1000), float(v)) for t, v in x["values"]]
            lo = end - 3600000
            want = [(t, v) for t, v in thanos_dedup(a, b) if lo < t <= end]
            self.assertEqual(pts, want)
            # Off per query: both replicas, labels and all.
            self.assertEqual(len(q("c_total[60m]", end, "false")), 3)
            self.assertEqual(q('count(c_total{job="x"})', end)[0]["value"][1], "1")
            self.assertEqual(q('count(c_total{job="x"})', end, "false")[0]["value"][1], "2")
            # rate() reads the counter adjusted across switches: no reset appears, so the
            # increase equals the Python model's.
            inc = float(q('increase(c_total{job="x"}[60m])', end)[0]["value"][1])
            model = [(t, v) for t, v in thanos_dedup(a, b, counter=True) if lo < t <= end]
            raw = model[-1][1] - model[0][1]
            span = (model[-1][0] - model[0][0]) / 1000.0
            # Prometheus extrapolates to the window edges: compare the unextrapolated
            # part by scaling back.
            self.assertGreater(inc, raw * 0.99)
            self.assertLess(inc, raw * 3600.0 / span * 1.01 + 1)
            # /api/v1/series lists the merged series, and every replica with dedup=false.
            r = srv.get("/api/v1/series?" + urllib.parse.urlencode({"match[]": "c_total"}))
            self.assertEqual(sorted(tuple(sorted(x.items())) for x in r.json()["data"]),
                             [(("__name__", "c_total"), ("job", "x")), (("__name__", "c_total"), ("job", "y"))])
            r = srv.get("/api/v1/series?" + urllib.parse.urlencode({"match[]": "c_total", "dedup": "false"}))
            self.assertEqual(len(r.json()["data"]), 3)
            r = srv.get("/api/v1/query?" + urllib.parse.urlencode({"query": "c_total", "dedup": "maybe"}))
            self.assertEqual(r.status, 400, r)
        finally:
            srv.stop()
            srv.cleanup()


PROM = """
global:
  scrape_interval: 1s
  evaluation_interval: 1m
  external_labels:
    cluster: c1
    replica: %(replica)s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:%(node)d']
remote_write:
  - url: http://127.0.0.1:%(tsdbd)d/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"""


@unittest.skipUnless(os.path.exists(peers.PROMETHEUS) and os.path.exists(peers.NODE_EXPORTER),
                     "prometheus / prometheus-node-exporter not installed (scripts/deps.sh test)")
class TwoPrometheusReplicas(unittest.TestCase):
    def test_count_up_is_one_and_failover(self):
        timeout = 5
        srv = peers.Tsdbd(["--ha.cluster-label", "cluster", "--ha.replica-label", "replica",
                           "--ha.failover-timeout", "%ds" % timeout], name="ha-e2e")
        node = peers.NodeExporter()
        proms = {}
        try:
            srv.start()
            node.start()
            for rep in ("a", "b"):
                proms[rep] = peers.Prometheus(PROM % {"replica": rep, "node": node.port, "tsdbd": srv.port})
                proms[rep].start()
            deadline = time.monotonic() + 60
            elected = None
            while time.monotonic() < deadline:
                st = srv.get("/api/v1/status/ha").json()["data"]
                if st["clusters"] and metric(srv, "tsdb_ha_samples_dropped_total", cluster="c1",
                                             replica="b" if st["clusters"][0]["replica"] == "a" else "a"):
                    elected = st["clusters"][0]["replica"]
                    break
                time.sleep(0.5)
            self.assertIsNotNone(elected, "no election with both replicas writing")
            time.sleep(2)
            res = query(srv, 'count(up{job="node"})')
            self.assertEqual(res[0]["value"][1], "1", res)
            self.assertEqual(query(srv, 'up{job="node"}')[0]["metric"].get("replica"), None)
            other = "b" if elected == "a" else "a"
            # Kill the elected replica: the other takes over within the timeout.
            proms[elected].proc.send_signal(signal.SIGKILL)
            proms[elected].proc.wait(10)
            killed = time.monotonic()
            new = None
            while time.monotonic() < killed + timeout + 15:
                st = srv.get("/api/v1/status/ha").json()["data"]
                if st["clusters"][0]["replica"] == other:
                    new = time.monotonic()
                    break
                time.sleep(0.2)
            self.assertIsNotNone(new, "no failover:\n" + srv.log_tail())
            # The other replica's next successful write lands within timeout + its
            # send deadline (1 s) + a scrape (1 s) + slack.
            self.assertLess(new - killed, timeout + 4)
            print("\nhandover %.1f s after the elected replica was killed (timeout %d s)"
                  % (new - killed, timeout), file=sys.stderr)
            t_before = float(query(srv, 'timestamp(up{job="node"})')[0]["value"][1])
            time.sleep(3)
            t_after = float(query(srv, 'timestamp(up{job="node"})')[0]["value"][1])
            self.assertGreater(t_after, t_before, "samples keep arriving from the new replica")
            self.assertEqual(query(srv, 'count(up{job="node"})')[0]["value"][1], "1")
        finally:
            for p in proms.values():
                p.cleanup()
            node.cleanup()
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    tsdbtest.main()
