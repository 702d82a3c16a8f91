#!/usr/bin/python3
"""Integration tests of downsampled tiers over HTTP: 30 days imported as JSON lines with
old timestamps, tiers built by `tsdbctl downsample`, then

- max_source_resolution (raw, 0s, 5m, 1h, auto, absent) on /api/v1/query_range: the
  over_time family on hour-aligned windows equals raw (rtol 1e-9) from either tier,
  rate/increase within 1 %, auto picks the tier Thanos would (the coarsest at most
  step/5, here also at most range/5) and answers as that tier does, and bad values get
  400 bad_data;
- retention per resolution (--retention.raw / .5m / .1h) across a restart and a kill -9:
  where raw samples are gone the tiers answer (max_source_resolution=raw too), series
  stay listed, appends older than the raw retention are refused, and `tsdbctl verify`
  passes.
"""
import math
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402

TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")
DAY = 86400000
HOUR = 3600000
STEP = 15000  # a 5m tier is built for scrape intervals up to 30 s
END = tsdbtest.now_ms() // DAY * DAY - 2 * DAY  # data ends two days ago, a day's start
START = END - 30 * DAY
OFF = 7000  # no sample on a window edge


def value(k, i):
    if k < 2:
        # Counters, one restarting from 0 every ~4.2 days, off the hour: where a restart
        # meets a window's start exactly, raw's rate() stops extrapolating at that end
        # (the counter was 0 there) and differs from the whole hour the rows hold.
        x = i % 24007 if k == 1 else i
        return float(x * (k + 2)) + 40.0 * (1 - math.cos(x / 1200.0))
    return round(50 + 20 * math.sin((i + 97 * k) / 1600.0), 2)


SERIES = [{"__name__": "c", "k": "0"}, {"__name__": "c", "k": "1"},
          {"__name__": "g", "k": "2"}, {"__name__": "g", "k": "3"}]
# A series whose samples are all in the oldest days: retention removes it whole.
CHURNED = {"__name__": "churned", "pod": "web-7d9f-x2x1"}


class DownsampleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = tsdbtest.Server([])
        cls.srv.start()
        n = (END - START) // STEP
        for k, labels in enumerate(SERIES):
            s = [(START + OFF + i * STEP, value(k, i)) for i in range(n)]
            for a in range(0, n, 40000):
                cls.srv.import_jsonl([tsdbtest.jsonl_line(labels, s[a:a + 40000])])
        cls.srv.import_jsonl([tsdbtest.jsonl_line(
            CHURNED, [(START + OFF + i * STEP, 1.0) for i in range(2400)])])
        cls.srv.stop()
        cls.ctl(["downsample", "--data-dir", cls.srv.data_dir])
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    @classmethod
    def ctl(cls, args):
        p = subprocess.run([TSDBCTL] + args, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError("tsdbctl %s: %s%s" % (args, p.stdout, p.stderr))
        return p.stdout

    def qr(self, q, start, end, step, res=None, status=200):
        p = {"query": q, "start": str(start / 1000), "end": str(end / 1000),
             "step": str(step // 1000)}
        if res is not None:
            p["max_source_resolution"] = res
        r = self.srv.get("/api/v1/query_range", p)
        self.assertEqual(r.status, status, r)
        if status != 200:
            return r.json()
        return {tuple(sorted(x["metric"].items())): [(p[0], float(p[1])) for p in x["values"]]
                for x in r.json()["data"]["result"]}

    def close(self, got, want, rtol, what):
        self.assertEqual(sorted(got), sorted(want), what)
        n = 0
        for key in want:
            self.assertEqual([t for t, _ in got[key]], [t for t, _ in want[key]], (what, key))
            for (t, a), (_, b) in zip(got[key], want[key]):
                self.assertLessEqual(abs(a - b), rtol * abs(b) + 1e-12,
                                     "%s %s at %s: %r, raw %r" % (what, key, t, a, b))
                n += 1
        self.assertGreater(n, 0, what)

    def test_1_over_time_equal_raw(self):
        a, b = START + 2 * DAY, END - HOUR
        for fn in ("sum_over_time", "count_over_time", "min_over_time", "max_over_time",
                   "avg_over_time"):
            raw = self.qr("%s(g[1h])" % fn, a, b, HOUR, "raw")
            for res in ("5m", "1h", "auto"):
                self.close(self.qr("%s(g[1h])" % fn, a, b, HOUR, res), raw, 1e-9,
                           "%s at %s" % (fn, res))
            raw6 = self.qr("%s(g[6h])" % fn, a, b, 6 * HOUR, "0s")
            self.close(self.qr("%s(g[6h])" % fn, a, b, 6 * HOUR), raw6, 1e-9, fn + " 6h auto")

    def test_2_rate_within_1pct(self):
        a, b = START + 2 * DAY, END - HOUR
        for q, step in (("rate(c[1h])", HOUR), ("increase(c[6h])", 6 * HOUR),
                        ("sum(rate(c[6h]))", 6 * HOUR)):
            raw = self.qr(q, a, b, step, "raw")
            self.close(self.qr(q, a, b, step), raw, 0.01, q + " auto")

    def test_3_auto_is_the_tier_thanos_picks(self):
        a, b = START + 2 * DAY, END - HOUR
        # step 6h, [6h]: the 1h tier; step 1h, [1h]: 5m; step 10m: raw (step/5 < 5m).
        self.assertEqual(self.qr("rate(c[6h])", a, b, 6 * HOUR),
                         self.qr("rate(c[6h])", a, b, 6 * HOUR, "1h"))
        self.assertEqual(self.qr("rate(c[1h])", a, b, HOUR, "auto"),
                         self.qr("rate(c[1h])", a, b, HOUR, "5m"))
        self.assertEqual(self.qr("rate(c[1h])", a, a + DAY, 600000),
                         self.qr("rate(c[1h])", a, a + DAY, 600000, "raw"))

    def test_4_bad_values(self):
        for bad in ("soon", "-5m", "1x"):
            j = self.qr("g", START, END, HOUR, bad, status=400)
            self.assertEqual(j["errorType"], "bad_data", j)
            self.assertIn("max_source_resolution", j["error"])
        r = self.srv.get("/api/v1/query", {"query": "g", "time": str(END / 1000),
                                           "max_source_resolution": "nope"})
        self.assertEqual(r.status, 400, r)

    def test_5_retention_per_resolution(self):
        a, b = START + 2 * DAY, END - HOUR
        before = {fn: self.qr("%s(g[1h])" % fn, a, b, HOUR, "raw")
                  for fn in ("sum_over_time", "count_over_time", "max_over_time")}
        before_rate = self.qr("increase(c[6h])", a, b, 6 * HOUR, "raw")
        # Raw samples older than 12 days go, 5m rows older than 20 days, 1h rows stay.
        self.srv.stop()
        self.srv.args = ["--retention.raw", "12d", "--retention.5m", "20d",
                         "--retention.1h", "0"]
        self.srv.start()
        for attempt in ("after the start-up pass", "after a kill -9 and a restart"):
            for fn, want in before.items():
                # The 5m rows answer 1h windows exactly; so do the 1h rows.
                self.close(self.qr("%s(g[1h])" % fn, a, b, HOUR, "raw"), want, 1e-9,
                           "%s %s" % (fn, attempt))
            self.close(self.qr("increase(c[6h])", a, b, 6 * HOUR, "raw"), before_rate, 0.01,
                       "increase " + attempt)
            r = self.srv.get("/api/v1/series", {"match[]": "g", "start": str(START / 1000),
                                                "end": str((START + 5 * DAY) / 1000)})
            self.assertEqual(len(r.json()["data"]), 2, r)
            self.srv.kill()
            self.srv.start()
        # Retention removing the oldest days whole: the churned series leaves the index
        # (label values and names, metric names, status/tsdb), the others stay.
        def names():
            return self.srv.get("/api/v1/label/__name__/values").json()["data"]
        self.assertIn("churned", names())
        self.assertIn("pod", self.srv.get("/api/v1/labels").json()["data"])
        self.srv.stop()
        self.srv.args = ["--retention", "27d"]
        self.srv.start()
        self.assertNotIn("churned", names())
        self.assertIn("g", names())
        m = self.srv.get("/metrics").text
        self.assertIn("tsdb_series_removed_total 1\n", m)
        self.assertRegex(m, r"tsdb_retention_partitions_removed_total [1-9]")
        self.assertNotIn("pod", self.srv.get("/api/v1/labels").json()["data"])
        st = self.srv.get("/api/v1/status/tsdb").json()["data"]
        self.assertEqual(st["headStats"]["numSeries"], len(SERIES), st)
        self.srv.restart()
        self.assertNotIn("churned", names())
        # Older than the raw retention: refused.
        old = END - 15 * DAY + 1234
        r = self.srv.post("/api/v1/import", (tsdbtest.jsonl_line(SERIES[2], [(old, 1.0)]) +
                                             "\n").encode())
        self.assertNotEqual(r.status, 204, r)
        self.srv.stop()
        out = self.ctl(["verify", "--data-dir", self.srv.data_dir])
        self.assertIn(": OK", out)
        out = self.ctl(["inspect", "--data-dir", self.srv.data_dir])
        self.assertIn("deleted by retention: raw 5m", out)
        self.srv.start()


if __name__ == "__main__":
    unittest.main(verbosity=2)
