#!/usr/bin/python3
"""The web UI in Debian's headless Chromium, against a tsdbd with known data: the
query page draws a graph of a real range query (points on the canvas, one legend entry
per series) and a table for an instant query; the cardinality page lists the metrics
with their series counts and drills into one; the status page shows the version, the
flags and storage. The pages are served from the binary (no network but 127.0.0.1).
Screenshots of each page are kept in <build>/tests/ui-artifacts/.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = os.path.join(tsdbtest.BUILD, "tests", "ui-artifacts")
STEP_MS = 15000
N = 240  # an hour of 15 s samples


class UiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(CHROMIUM):
            raise unittest.SkipTest("chromium is not installed (scripts/deps.sh test installs it)")
        cls.srv = tsdbtest.Server().start()
        end = int(time.time() * 1000) // STEP_MS * STEP_MS
        ts = [end - (N - 1 - i) * STEP_MS for i in range(N)]
        lines = []
        for inst in ("host-a:9100", "host-b:9100", "host-c:9100"):
            for mode, r in (("idle", 0.7), ("user", 0.25), ("system", 0.05)):
                lines.append(json.dumps({
                    "metric": {"__name__": "node_cpu_seconds_total", "instance": inst, "job": "node", "mode": mode},
                    "values": [1000 + r * i * 15 for i in range(N)], "timestamps": ts}))
            lines.append(json.dumps({"metric": {"__name__": "up", "instance": inst, "job": "node"},
                                     "values": [1] * N, "timestamps": ts}))
        cls.srv.import_jsonl(lines)
        cls.base = "http://127.0.0.1:%d/ui/" % cls.srv.port
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.profile = tempfile.mkdtemp(prefix="tsdb-chromium-")

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        shutil.rmtree(cls.profile, ignore_errors=True)

    def chromium(self, extra, url):
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--user-data-dir=" + self.profile,
                "--virtual-time-budget=15000", "--window-size=1280,1000"] + extra + [url]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        return p.stdout

    def page(self, fragment, shot):
        """The page's DOM after its scripts ran, and a screenshot of it."""
        url = self.base + "#" + fragment
        dom = self.chromium(["--dump-dom"], url)
        self.chromium(["--screenshot=" + os.path.join(ARTIFACTS, shot)], url)
        self.assertTrue(os.path.getsize(os.path.join(ARTIFACTS, shot)) > 1000)
        return dom

    def test_query_page_draws_a_graph(self):
        expr = 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))'
        frag = "query?" + "&".join(["expr=" + urlq(expr), "range=3600", "view=graph"])
        dom = self.page(frag, "query-graph.png")
        self.assertIn('data-ready="query"', dom)
        m = re.search(r'<canvas id="graph"[^>]*data-series="(\d+)"[^>]*data-points="(\d+)"', dom)
        self.assertIsNotNone(m, dom[:3000])
        self.assertEqual(int(m.group(1)), 3)
        self.assertGreater(int(m.group(2)), 3 * 200)
        legend = re.search(r'<ul id="legend">(.*?)</ul>', dom, re.S).group(1)
        for inst in ("host-a:9100", "host-b:9100", "host-c:9100"):
            self.assertIn('{instance="%s"}' % inst, legend)
        self.assertIn("3 series", dom)
        self.assertNotIn('class="error">', dom.replace('class="error" hidden', ""))

    def test_query_page_table_and_errors(self):
        dom = self.page("query?expr=" + urlq("up") + "&range=3600&view=table", "query-table.png")
        table = re.search(r'<table id="table">(.*?)</table>', dom, re.S).group(1)
        self.assertEqual(table.count("<tr>"), 4)  # header and three series
        self.assertIn("host-b:9100", table)
        dom = self.chromium(["--dump-dom"], self.base + "#query?expr=" + urlq("sum(") + "&view=table")
        self.assertIn("bad_data", dom)

    def test_cardinality_page(self):
        dom = self.page("cardinality", "cardinality.png")
        self.assertIn('data-ready="cardinality"', dom)
        metrics = re.search(r'<table id="card-metrics">(.*?)</table>', dom, re.S).group(1)
        self.assertRegex(metrics, r"node_cpu_seconds_total</a></td><td class=\"num\">9</td>")
        self.assertRegex(metrics, r"up</a></td><td class=\"num\">3</td>")
        # Drill-down into a metric: its labels and how many values each has.
        dom = self.page("cardinality?metric=node_cpu_seconds_total", "cardinality-drill.png")
        self.assertIn('data-drilled="node_cpu_seconds_total"', dom)
        drill = re.search(r'<table id="drill-table">(.*?)</table>', dom, re.S).group(1)
        for label, n in (("instance", 3), ("job", 1), ("mode", 3)):
            self.assertRegex(drill, r"<td>%s</td><td class=\"num\">%d</td>" % (label, n))

    def test_status_page(self):
        dom = self.page("status", "status.png")
        self.assertIn('data-ready="status"', dom)
        self.assertIn("0.1.0", dom)
        self.assertIn("--data-dir", dom)
        storage = re.search(r'<table id="status-storage">(.*?)</table>', dom, re.S).group(1)
        self.assertRegex(storage, r"<td>series</td><td class=\"num\">12</td>")  # 3 instances x (3 modes + up)
        self.assertIn('data-rates="1"', dom)  # the second /metrics sample came back
        parts = re.search(r'<table id="status-parts">(.*?)</table>', dom, re.S).group(1)
        self.assertEqual(parts.count("<tr>"), 1 + len(self.srv.get("/api/v1/status/storage").json()["data"]["partitions"]))
        self.assertIn("hot", parts)
        self.assertIn('<div id="status-ha-box" hidden="">', dom)  # no HA tracker: no table

    def test_status_page_ha(self):
        srv = tsdbtest.Server(["--ha.cluster-label", "cluster", "--ha.replica-label", "replica"]).start()
        try:
            t = int(time.time() * 1000) - 60000
            for rep, status in (("a", 204), ("b", 202), ("b", 202)):
                r = srv.remote_write([({"__name__": "up", "cluster": "prod-eu", "replica": rep}, [(t, 1.0)])])
                self.assertEqual(r.status, status, r)
            url = "http://127.0.0.1:%d/ui/#status" % srv.port
            dom = self.chromium(["--dump-dom"], url)
            self.chromium(["--screenshot=" + os.path.join(ARTIFACTS, "status-ha.png")], url)
        finally:
            srv.cleanup()
        ha = re.search(r'<table id="status-ha">(.*?)</table>', dom, re.S).group(1)
        self.assertEqual(ha.count("<tr>"), 2)
        self.assertIn("<td>prod-eu</td><td>a</td>", ha)
        self.assertIn("b: 2", ha)


def urlq(s):
    import urllib.parse
    return urllib.parse.quote(s, safe="")


if __name__ == "__main__":
    peers.run_main()
