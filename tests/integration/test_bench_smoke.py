#!/usr/bin/python3
"""Seconds-long smoke run of the side-by-side benchmark driver (tools/bench/run.py).

Keeps the driver working, measures nothing: the tiny node_exporter-like dataset (about
20,000 samples) goes to tsdbd and to one peer from Debian packages (Prometheus, else
VictoriaMetrics) once, with short waits. Asserts that the Markdown table is printed with
a ratio column and that the raw figures are sane: every write acknowledged, every sample
of the check metric stored and back after kill -9, positive throughput, disk, RSS and
query latencies, disk while ingesting, tsdbd's index bytes per series and its at-rest
breakdown. Skipped when neither peer is installed.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import tsdbtest

RUN = os.path.join(tsdbtest.SRCDIR, "tools", "bench", "run.py")
PEERS = [("prometheus", "/usr/bin/prometheus"), ("victoriametrics", "/usr/bin/victoria-metrics")]


class BenchSmoke(unittest.TestCase):
    def test_tiny_run_prints_a_sane_table(self):
        peer = next((name for name, path in PEERS if os.access(path, os.X_OK)), None)
        if peer is None:
            self.skipTest("no peer installed (prometheus or victoria-metrics)")
        with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
            out_json = os.path.join(tmp, "figures.json")
            p = subprocess.run(
                [sys.executable, RUN, "--size", "tiny", "--repeat", "1", "--datasets", "node",
                 "--systems", "tsdbd," + peer, "--build", tsdbtest.BUILD, "--query-reps", "2",
                 "--settle", "0.5", "--pre-crash-wait", "1", "--recovery-timeout", "20",
                 "--max-seconds", "20", "--tmpdir", tmp, "--out", out_json],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=55)
            sys.stderr.write(p.stderr.decode(errors="replace"))
            self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace")[-2000:])
            table = p.stdout.decode()
            self.assertIn("| metric | tsdbd |", table)
            self.assertIn("tsdbd vs ", table)
            self.assertIn("| ingest, samples/s |", table)
            with open(out_json) as f:
                fig = json.load(f)
            self.assertGreater(fig["ceiling"]["node"], 0)
            for name in ("tsdbd", peer):
                r = fig["results"]["node"][name][0]
                expected = fig["manifest"]["node"]["check_samples"]
                self.assertEqual(r["failed_requests"], 0, r["first_error"])
                self.assertFalse(r["truncated"])
                self.assertEqual(r["stored"], expected, name)
                self.assertEqual(r["recovered"], expected, name)
                self.assertIsNotNone(r["recovery_s"], name)
                self.assertGreater(r["samples_per_s"], 1000, name)
                # CPU time comes in 10 ms clock ticks: the tiny dataset may cost tsdbd
                # less than one, so 0 is a measurement, not a broken one.
                self.assertGreaterEqual(r["cpu_s_per_msample"], 0, name)
                self.assertTrue(0 < r["bytes_per_sample"] < 10000, (name, r["bytes_per_sample"]))
                self.assertTrue(0 < r["ingest_bytes_per_sample"] < 10000,
                                (name, r["ingest_bytes_per_sample"]))
                self.assertGreater(r["peak_rss_mib"], 1, name)
                self.assertEqual(r["query_errors"], 0, name)
                self.assertGreater(r["dash_p50_ms"], 0, name)
                self.assertGreater(r["lookup_p50_ms"], 0, name)
                self.assertTrue(r["clean_stop"], name)
            self.assertIn("| disk while ingesting, bytes/sample (WAL share) |", table)
            self.assertIn("| index at rest, bytes/series |", table)
            self.assertIn("tsdbd at rest: wal/ ", table)
            t = fig["results"]["node"]["tsdbd"][0]
            self.assertGreater(t["index_bytes_per_series"], 0)
            bd = t["rest_breakdown"]
            self.assertEqual(bd["index"], t["index_bytes"])
            self.assertEqual(bd["wal"] + bd["index"] + bd["raw"] + bd["other"], t["disk_bytes"])


if __name__ == "__main__":
    tsdbtest.main()
