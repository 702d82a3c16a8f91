#!/usr/bin/python3
"""End to end with real peers: a real Prometheus scrapes a real prometheus-node-exporter
and itself every second and remote-writes everything to tsdbd (RW 1.0, batch deadline
1 s). After a bounded wait, every sample Prometheus holds in a compared window must be in
tsdbd bit-exact.

The window ends several seconds before the check, so samples still in Prometheus' send
queue at its newest edge do not count, and both sides are compared strictly inside it
(the inclusiveness of the edges is not what this test is about). Prometheus' raw samples
come from /api/v1/query of `{__name__=~".+"}[<window>]` at a fixed time (stale markers
are not part of a range selection, and tsdbd's export leaves them out too); tsdbd's
come from GET /api/v1/export when it has it, else the resend oracle (after stopping
Prometheus, an exact resend of all of Prometheus' samples must be counted entirely as
duplicates by tsdbd). Values compare as float64 bits; NaNs compare by being NaN.
"""
import math
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from peers import metric  # noqa: E402

CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:{PROM_PORT}']
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:%(node)d']
remote_write:
  - url: http://127.0.0.1:%(tsdbd)d/api/v1/write
    remote_timeout: 10s
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 2000
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 2s
"""

WINDOW_S = 8          # compared window
EDGE_S = 5            # the window ends this long before the check
MIN_SCRAPES_S = 6     # Prometheus scrapes this long before the window starts


def prom_value(s):
    return float(s)   # "NaN", "+Inf", "-Inf" and shortest decimals all parse exactly


class E2EPrometheusTest(unittest.TestCase):
    def test_prometheus_remote_write_is_stored_bit_exact(self):
        t_begin = time.monotonic()
        srv = peers.Tsdbd(["--sync", "always"], name="e2e").start()
        self.addCleanup(srv.cleanup)
        node = peers.NodeExporter().start()
        self.addCleanup(node.cleanup)
        prom = peers.Prometheus(CONFIG % {"node": node.port, "tsdbd": srv.port})
        self.addCleanup(prom.cleanup)
        prom.start()
        started = time.time()
        # Bounded wait: scrapes for MIN_SCRAPES_S, then a whole window, then the edge.
        end_s = int(started) + MIN_SCRAPES_S + WINDOW_S
        deadline = time.monotonic() + 40
        while time.time() < end_s + EDGE_S and time.monotonic() < deadline:
            time.sleep(0.25)
        self.assertTrue(prom.proc.poll() is None, prom.log_tail())
        # Both targets up for the whole run?
        targets = prom.api("/api/v1/targets")["activeTargets"]
        self.assertEqual(sorted(t["health"] for t in targets), ["up", "up"], targets)

        lo_ms, hi_ms = (end_s - WINDOW_S) * 1000, end_s * 1000
        data = prom.api("/api/v1/query", query='{__name__=~".+"}[%ds]' % (WINDOW_S + 1), time=str(end_s))
        self.assertEqual(data["resultType"], "matrix")
        want = {}
        for s in data["result"]:
            lab = tuple(sorted(s["metric"].items()))
            pts = [(int(round(float(t) * 1000)), prom_value(v)) for t, v in s["values"]]
            pts = [(t, v) for t, v in pts if lo_ms < t < hi_ms]
            if pts:
                want[lab] = pts
        listed = prom.api("/api/v1/series", **{"match[]": '{__name__=~".+"}', "start": str(end_s - WINDOW_S),
                                               "end": str(end_s)})
        listed = {tuple(sorted(x.items())) for x in listed}
        n_samples = sum(len(p) for p in want.values())
        self.assertGreater(len(want), 200, "too few series scraped")
        self.assertTrue({l for l in want} <= listed)
        jobs = {dict(l).get("job") for l in want}
        self.assertEqual(jobs, {"prometheus", "node"})

        def prom_counter(name):
            d = prom.api("/api/v1/query", query="sum(%s)" % name)
            return float(d["result"][0]["value"][1]) if d["result"] else 0.0
        failed = prom_counter("prometheus_remote_storage_samples_failed_total")
        sent = prom_counter("prometheus_remote_storage_samples_total")

        if peers.export_available(srv):
            how = "export"
            got = peers.export(srv, '{__name__=~".+"}', start=str((lo_ms - 60000) / 1000), end=str(hi_ms / 1000 + 60))
            missing_series = sorted(listed - set(got))
            self.assertFalse(missing_series, "series Prometheus has but tsdbd has not: %s" % missing_series[:5])
            bad = []
            for lab, pts in want.items():
                gp = [(t, v) for t, v in got.get(lab, []) if lo_ms < t < hi_ms]
                if len(gp) != len(pts) or any(a[0] != b[0] or not peers.same_value(a[1], b[1])
                                              for a, b in zip(gp, pts)):
                    bad.append((lab, pts[:3], gp[:3]))
            self.assertFalse(bad, "%d series differ, first: %s" % (len(bad), bad[:3]))
            extra = [(lab, pts) for lab, pts in got.items() if lab in want and
                     len([1 for t, _ in pts if lo_ms < t < hi_ms]) != len(want[lab])]
            self.assertFalse(extra)
            prom.stop()
        else:
            how = "resend oracle (no export yet)"
            prom.stop()   # nothing else writes to tsdbd while the oracle counts
            time.sleep(0.5)
            series = []
            for lab, pts in want.items():
                series.append((list(lab), [(t, ("bits", 0x7FF8000000000001) if math.isnan(v) else v)
                                           for t, v in pts]))
            dup, new, other, st = peers.resend_check(srv, series)
            self.assertEqual((dup, new, other), (n_samples, 0, 0), "statuses %s" % st)
        m = srv.metrics()
        self.assertEqual(failed, 0.0)
        self.assertEqual(metric(m, "tsdb_http_requests_total", handler="remote_write", code="400"), 0)
        self.assertGreater(metric(m, "tsdb_metadata_received_total"), 0)
        self.assertGreaterEqual(metric(m, "tsdb_samples_ingested_total", protocol="remote_write"), n_samples)
        print("e2e: %d series, %d samples in (%d, %d) ms identical in tsdbd via %s; Prometheus sent %d "
              "samples, %d failed; %.1fs" % (len(want), n_samples, lo_ms, hi_ms, how, sent, failed,
                                             time.monotonic() - t_begin))


if __name__ == "__main__":
    peers.run_main()
