#!/usr/bin/python3
"""Limits that protect the store. --max-series and --max-series-per-metric over HTTP: a request bringing new series past
a limit gets 400 (not retried by Prometheus) naming the limit, while its samples of
existing series are stored; remote write, InfluxDB line protocol and JSON import alike;
tsdb_requests_limited_total{limit="series"|"series_per_metric"} and
tsdb_samples_rejected_total{reason="series_limit"} count them; the limits hold after a
restart. Query limits: --query.max-series (a selector selecting more gets 422
execution naming the limit) and --query.max-samples (Prometheus' 422), on remote read too (400, as
Prometheus answers its read sample limit). Bad flag values
exit 2.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402
from peers import metric  # noqa: E402


def rw(srv, series):
    return srv.remote_write(series)


class LimitsTest(unittest.TestCase):
    def setUp(self):
        self.srv = tsdbtest.Server(["--max-series", "4", "--max-series-per-metric", "3"]).start()

    def tearDown(self):
        self.srv.cleanup()

    def metrics(self):
        return peers.parse_metrics(self.srv.get("/metrics").text)

    def count(self, name):
        r = self.srv.get("/api/v1/query", {"query": "count(%s)" % name})
        res = r.json()["data"]["result"]
        return int(res[0]["value"][1]) if res else 0

    def test_limits(self):
        t = tsdbtest.now_ms()
        s = self.srv
        r = rw(s, [({"__name__": "a", "k": str(i)}, [(t, 1.0)]) for i in range(3)])
        self.assertEqual(r.status, 204, r)
        # a 4th series of "a": the per-metric limit; a's 3 series still take samples
        m0 = self.metrics()
        r = rw(s, [({"__name__": "a", "k": str(i)}, [(t + 1000, 2.0)]) for i in range(4)])
        self.assertEqual(r.status, 400, r)
        self.assertIn("per-metric series limit reached for a", r.text)
        self.assertIn("3 samples stored", r.text)
        m1 = self.metrics()
        self.assertEqual(metric(m1, "tsdb_requests_limited_total", limit="series_per_metric") -
                         metric(m0, "tsdb_requests_limited_total", limit="series_per_metric"), 1)
        self.assertEqual(metric(m1, "tsdb_samples_rejected_total", reason="series_limit") -
                         metric(m0, "tsdb_samples_rejected_total", reason="series_limit"), 1)
        # one more series of another metric fits (4 in all), the next does not
        r = rw(s, [({"__name__": "b", "k": "0"}, [(t, 1.0)])])
        self.assertEqual(r.status, 204, r)
        r = s.post("/write", ("c,k=0 v=1 %d" % (t * 1000000)).encode(), params={"precision": "ns"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("series limit reached", r.text)
        r = s.post("/api/v1/import", (json.dumps({"metric": {"__name__": "d"}, "values": [1],
                                                  "timestamps": [t]}) + "\n").encode())
        self.assertEqual(r.status, 400, r)
        self.assertIn("max_series", r.text)
        m2 = self.metrics()
        self.assertEqual(metric(m2, "tsdb_requests_limited_total", limit="series") -
                         metric(m1, "tsdb_requests_limited_total", limit="series"), 2)
        self.assertEqual((self.count("a"), self.count("b"), self.count("c_v"), self.count("d")),
                         (3, 1, 0, 0))
        # still enforced after a restart (counts rebuilt from the index)
        s.restart()
        r = rw(s, [({"__name__": "e"}, [(t, 1.0)]), ({"__name__": "b", "k": "0"}, [(t + 5000, 3.0)])])
        self.assertEqual(r.status, 400, r)
        self.assertIn("1 samples stored", r.text)

    def test_query_limits(self):
        q = tsdbtest.Server(["--query.max-series", "2", "--query.max-samples", "100"])
        try:
            q.start()
            t = tsdbtest.now_ms() - 600000
            r = q.remote_write([({"__name__": "a", "k": str(i)}, [(t + j * 1000, float(j)) for j in range(120)])
                                for i in range(3)])
            self.assertEqual(r.status, 204, r)
            for query in ("a", "count(a)", "rate(a[5m])"):
                r = q.get("/api/v1/query", {"query": query, "time": "%.3f" % (t / 1000 + 119)})
                self.assertEqual(r.status, 422, (query, r))
                j = r.json()
                self.assertEqual(j["errorType"], "execution")
                self.assertIn("query selects too many series: 3, the limit is 2", j["error"])
            r = q.get("/api/v1/query", {"query": 'a{k!="2"}', "time": "%.3f" % (t / 1000 + 119)})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.json()["data"]["result"]), 2)
            # 2 series x 120 samples held by a range function: past 100 samples
            r = q.get("/api/v1/query", {"query": 'sum(count_over_time(a{k!="2"}[5m]))',
                                        "time": "%.3f" % (t / 1000 + 119)})
            self.assertEqual(r.status, 422, r)
            self.assertIn("query processing would load too many samples into memory",
                          r.json()["error"])
            # a request's timeout below the cap is taken as given
            r = q.get("/api/v1/query", {"query": "1", "timeout": "1s"})
            self.assertEqual(r.status, 200, r)
            # Remote read (every query of a fan-out Prometheus) obeys the same limits:
            # the series limit in both answer types, the sample limit in SAMPLES.
            for acc in ((), (1,)):
                r = q.remote_read([(t, t + 200000, [(0, "__name__", "a")])], acc)
                self.assertEqual(r.status, 400, r)
                self.assertIn("remote read selects too many series: 3, the limit is 2", r.text)
            r = q.remote_read([(t, t + 200000, [(0, "__name__", "a"), (1, "k", "2")])])
            self.assertEqual(r.status, 400, r)
            self.assertIn("exceeded sample limit (100)", r.text)
            r = q.remote_read([(t, t + 40000, [(0, "__name__", "a"), (1, "k", "2")])])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(sum(len(x.samples) for x in tsdbtest.read_response(r.body).results[0].timeseries),
                             2 * 41)
        finally:
            q.cleanup()

    def test_bad_flags(self):
        for flag, val in (("--max-series", "0"), ("--max-series", "x"),
                          ("--max-series-per-metric", "-1"), ("--query.timeout", "0"),
                          ("--query.max-samples", "0"), ("--query.max-series", "many")):
            p = subprocess.run([os.path.join(tsdbtest.BUILD, "tsdbd"), flag, val],
                               capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 2, (flag, val))
            self.assertIn(flag.encode(), p.stderr)


if __name__ == "__main__":
    peers.run_main()
