#!/usr/bin/python3
"""Integration tests of retention per selector (--retention.config, a YAML mapping of
series selectors to durations, first match wins, reloaded on SIGHUP): a rule's series lose
their samples older than the rule at start-up; a reload applies new rules within seconds;
an invalid file is refused at start-up (exit 2, the line named) and ignored on SIGHUP (the
rules in force stay); `tsdbctl verify` passes afterwards.
"""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402

TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")
DAY = 86400000
STEP = 60000
END = tsdbtest.now_ms() // DAY * DAY - DAY
START = END - 10 * DAY
DEBUG = {"__name__": "req", "job": "debug"}
APP = {"__name__": "req", "job": "app"}


class RetentionRulesTest(unittest.TestCase):
    def setUp(self):
        self.srv = tsdbtest.Server([])
        self.cfg = os.path.join(self.srv.tmp, "retention.yml")
        self.srv.start()
        n = (END - START) // STEP
        for labels in (DEBUG, APP):
            s = [(START + 7000 + i * STEP, float(i)) for i in range(n)]
            for a in range(0, n, 10000):
                self.srv.import_jsonl([tsdbtest.jsonl_line(labels, s[a:a + 10000])])
        self.srv.stop()

    def tearDown(self):
        self.srv.cleanup()

    def write_cfg(self, text):
        with open(self.cfg, "w") as f:
            f.write(text)

    def oldest_day(self, job):
        """Days before END of the oldest day holding samples of job (0: none)."""
        for d in range(10, 0, -1):
            t = END - (d - 1) * DAY - 1
            r = self.srv.get("/api/v1/query", {"query": 'count_over_time(req{job="%s"}[1d])' % job,
                                               "time": str(t / 1000)})
            self.assertEqual(r.status, 200, r)
            if r.json()["data"]["result"]:
                return d
        return 0

    def wait_oldest(self, job, want, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.oldest_day(job)
            if got == want:
                return
            time.sleep(0.2)
        self.assertEqual(self.oldest_day(job), want, job)

    def test_rules_and_reload(self):
        self.write_cfg("# debug data is short-lived\n'{job=\"debug\"}': 5d\n")
        self.srv.args = ["--retention.config", self.cfg]
        self.srv.start()
        # A day goes once its end is 5 days old: END is yesterday's end, so days 5 and
        # more before it are gone.
        self.assertEqual(self.oldest_day("debug"), 4)
        self.assertEqual(self.oldest_day("app"), 10)
        # An invalid file on SIGHUP: logged, the rules in force stay.
        self.write_cfg("'{job=\"app\"': 4d\n")
        self.srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "not reloaded" not in self.srv.log_tail() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("not reloaded", self.srv.log_tail())
        self.assertEqual(self.oldest_day("app"), 10)
        # New rules on SIGHUP: applied within seconds; first match wins.
        self.write_cfg("{job=\"app\", __name__=\"req\"}: 4d\n{job=~\".+\"}: 3d\n")
        self.srv.proc.send_signal(signal.SIGHUP)
        self.wait_oldest("app", 3)
        self.wait_oldest("debug", 2)
        m = self.srv.get("/metrics").text
        self.assertIn("tsdb_retention_rules 2\n", m)
        n = int(m.split("\ntsdb_retention_rule_deletions_total ")[1].split("\n")[0])
        self.assertGreater(n, 0, m)
        self.srv.stop()
        out = subprocess.run([TSDBCTL, "verify", "--data-dir", self.srv.data_dir],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_invalid_file_at_start(self):
        for text, where in (("- '{job=\"a\"}'\n", "line 1"), ("'{job=\"a\"}': soon\n", "line 1"),
                            ("ok: 1d\n'{job=~\"(\"}': 2d\n", "line 2")):
            self.write_cfg(text)
            p = subprocess.run([self.srv.binary, "--data-dir", self.srv.data_dir, "--listen",
                                "127.0.0.1:0", "--retention.config", self.cfg],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("--retention.config", p.stderr)
            self.assertIn(where, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
