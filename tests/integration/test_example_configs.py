#!/usr/bin/python3
"""The ready-made configurations in examples/ work against a real tsdbd with known data:

- examples/prometheus/prometheus.yml passes `promtool check config`;
- the Grafana provisioning's two datasources answer Grafana's health checks (PromQL
  1+1 over POST, the JSON datasource's test request);
- every panel of the node dashboard runs with its template variables resolved as
  Grafana resolves them (label_values through the label values API, $__rate_interval)
  and the answers are the values the data implies;
- prometheus-adapter's rule: its seriesQuery finds the pods, and its metricsQuery,
  rendered as the adapter renders it, gives each pod's request rate;
- KEDA's ScaledObject query gives the total rate.
"""
import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.parse

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

EX = os.path.join(tsdbtest.SRCDIR, "examples")
STEP_MS = 15000
N = 120  # 30 minutes of 15 s samples
INSTANCES = ["host-a:9100", "host-b:9100"]
PODS = {"api-1": 10.0, "api-2": 30.0}  # requests per second
MEM_TOTAL, MEM_AVAIL = 8 << 30, 2 << 30


def series_lines(end_ms):
    t0 = end_ms - (N - 1) * STEP_MS
    ts = [t0 + i * STEP_MS for i in range(N)]
    secs = [(t - t0) / 1000.0 for t in ts]
    out = []

    def add(labels, values):
        out.append(json.dumps({"metric": labels, "values": values, "timestamps": ts}))

    for inst in INSTANCES:
        base = {"job": "node", "instance": inst}
        add(dict(base, __name__="node_uname_info", nodename=inst.split(":")[0]), [1] * N)
        for cpu in ("0", "1"):
            # idle 0.75 s per second, user 0.2, system 0.05: busy = 0.25
            for mode, r in (("idle", 0.75), ("user", 0.2), ("system", 0.05)):
                add(dict(base, __name__="node_cpu_seconds_total", cpu=cpu, mode=mode),
                    [1000 + r * s for s in secs])
        add(dict(base, __name__="node_memory_MemTotal_bytes"), [MEM_TOTAL] * N)
        add(dict(base, __name__="node_memory_MemAvailable_bytes"), [MEM_AVAIL] * N)
        for m, v in (("node_load1", 1.5), ("node_load5", 1.0), ("node_load15", 0.5)):
            add(dict(base, __name__=m), [v] * N)
        for dev in ("eth0", "lo"):
            add(dict(base, __name__="node_network_receive_bytes_total", device=dev), [1e6 * s for s in secs])
            add(dict(base, __name__="node_network_transmit_bytes_total", device=dev), [5e5 * s for s in secs])
        add(dict(base, __name__="node_disk_read_bytes_total", device="sda"), [4096.0 * s for s in secs])
        add(dict(base, __name__="node_disk_written_bytes_total", device="sda"), [8192.0 * s for s in secs])
        for mp, fs in (("/", "ext4"), ("/run", "tmpfs")):
            lab = dict(base, mountpoint=mp, fstype=fs, device="sda1")
            add(dict(lab, __name__="node_filesystem_size_bytes"), [100e9] * N)
            # / fills at 100 kB/s: 50 GB free now, 8.6 GB less in 24 h (not full)
            add(dict(lab, __name__="node_filesystem_avail_bytes"), [50e9 + 1e5 * (secs[-1] - s) for s in secs])
    for pod, rate in PODS.items():
        add({"__name__": "http_requests_total", "namespace": "default", "pod": pod, "deployment": "api",
             "code": "200"}, [rate * s for s in secs])
    return out


class ExampleConfigsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = tsdbtest.Server().start()
        cls.end_ms = int(time.time() * 1000) // STEP_MS * STEP_MS
        cls.srv.import_jsonl(series_lines(cls.end_ms))
        cls.start_s = (cls.end_ms - (N - 1) * STEP_MS) / 1000.0
        cls.end_s = cls.end_ms / 1000.0

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def api(self, path, params, method="GET"):
        if method == "POST":
            r = self.srv.post_form(path, params)
        else:
            r = self.srv.get(path + "?" + urllib.parse.urlencode(params, doseq=True))
        self.assertEqual(r.status, 200, (path, params, r.text))
        o = r.json()
        self.assertEqual(o["status"], "success", o)
        return o["data"]

    def test_prometheus_config_checks(self):
        p = subprocess.run(["promtool", "check", "config", os.path.join(EX, "prometheus", "prometheus.yml")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)

    def test_grafana_datasources_pass_health_checks(self):
        with open(os.path.join(EX, "grafana", "provisioning", "datasources", "tsdbd.yaml")) as f:
            conf = yaml.safe_load(f)
        by_type = {d["type"]: d for d in conf["datasources"]}
        prom = by_type["prometheus"]
        self.assertEqual(urllib.parse.urlparse(prom["url"]).path, "")
        # Grafana's Prometheus health check: 1+1 with the datasource's HTTP method.
        d = self.api("/api/v1/query", {"query": "1+1", "time": str(self.end_s)}, prom["jsonData"]["httpMethod"])
        self.assertEqual(d["result"][1], "2")
        self.assertEqual(self.api("/api/v1/status/buildinfo", {})["version"], "0.1.0")
        js = by_type["simpod-json-datasource"]
        path = urllib.parse.urlparse(js["url"]).path
        r = self.srv.get(path + "/")  # the JSON datasource's "Save & test"
        self.assertEqual(r.status, 200, r.text)
        with open(os.path.join(EX, "grafana", "provisioning", "dashboards", "tsdbd.yaml")) as f:
            self.assertEqual(yaml.safe_load(f)["providers"][0]["type"], "file")

    def label_values(self, q):
        """Grafana's label_values(selector, label) variable query."""
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
        self.assertIsNotNone(m, q)
        return self.api("/api/v1/label/%s/values" % m.group(2),
                        {"match[]": m.group(1), "start": str(self.start_s), "end": str(self.end_s)})

    def test_node_dashboard_panels_answer(self):
        with open(os.path.join(EX, "grafana", "dashboards", "node.json")) as f:
            dash = json.load(f)
        variables = {}
        for v in dash["templating"]["list"]:
            q = v["query"]
            for k, val in variables.items():
                q = q.replace("$" + k, val)
            values = self.label_values(q)
            self.assertTrue(values, (v["name"], q))
            variables[v["name"]] = values[0]
        self.assertEqual(variables, {"job": "node", "instance": "host-a:9100"})
        # Grafana: $__rate_interval = max(4 x scrape interval (15 s), step + scrape) = 1m here.
        variables["__rate_interval"] = "1m"
        answers = {}
        for panel in dash["panels"]:
            for t in panel["targets"]:
                expr = t["expr"]
                for k in sorted(variables, key=len, reverse=True):
                    expr = expr.replace("$" + k, variables[k])
                self.assertNotIn("$", expr)
                d = self.api("/api/v1/query_range", {"query": expr, "start": str(self.end_s - 1200),
                                                     "end": str(self.end_s), "step": "60"}, "POST")
                answers[(panel["title"], t["refId"])] = d["result"]

        def last(title, ref="A"):
            res = answers[(title, ref)]
            return {json.dumps(s["metric"], sort_keys=True): float(s["values"][-1][1]) for s in res}

        self.assertAlmostEqual(list(last("CPU busy").values())[0], 0.25, places=6)
        self.assertEqual({json.loads(k)["mode"]: round(v, 6) for k, v in last("CPU by mode").items()},
                         {"user": 0.4, "system": 0.1})
        self.assertAlmostEqual(list(last("Memory used").values())[0], 0.75, places=9)
        self.assertEqual(sorted(last("Load", r).popitem()[1] for r in "ABC"), [0.5, 1.0, 1.5])
        rx = last("Network", "A")
        self.assertEqual([json.loads(k)["device"] for k in rx], ["eth0"])  # lo filtered out
        self.assertAlmostEqual(list(rx.values())[0], 8e6, places=3)
        self.assertAlmostEqual(list(last("Network", "B").values())[0], -4e6, places=3)
        self.assertAlmostEqual(list(last("Disk I/O", "B").values())[0], 8192.0, places=6)
        fs = last("Filesystem available")
        self.assertEqual([json.loads(k)["mountpoint"] for k in fs], ["/"])  # tmpfs filtered out
        self.assertAlmostEqual(list(fs.values())[0], 0.5, places=6)
        self.assertEqual(answers[("Filesystem full in 24h (linear prediction)", "A")], [])

    def test_prometheus_adapter_rule(self):
        with open(os.path.join(EX, "kubernetes", "prometheus-adapter-rules.yaml")) as f:
            rule = yaml.safe_load(f)["rules"][0]
        # Discovery: the series of the rule, over the adapter's window.
        found = self.api("/api/v1/series", {"match[]": rule["seriesQuery"], "start": str(self.end_s - 600),
                                            "end": str(self.end_s)})
        pods = sorted({s["pod"] for s in found})
        self.assertEqual(pods, sorted(PODS))
        name = re.sub(rule["name"]["matches"], rule["name"]["as"].replace("${1}", r"\1"), found[0]["__name__"])
        self.assertEqual(name, "http_requests_per_second")
        # The metrics query for the HPA's pods, rendered as the adapter renders it.
        q = (rule["metricsQuery"].replace("<<.Series>>", "http_requests_total")
             .replace("<<.LabelMatchers>>", 'namespace="default",pod=~"%s"' % "|".join(pods))
             .replace("<<.GroupBy>>", "pod"))
        d = self.api("/api/v1/query", {"query": q, "time": str(self.end_s)})
        got = {s["metric"]["pod"]: float(s["value"][1]) for s in d["result"]}
        self.assertEqual(sorted(got), sorted(PODS))
        for pod, rate in PODS.items():
            self.assertAlmostEqual(got[pod], rate, places=6)

    def test_keda_scaled_object_query(self):
        with open(os.path.join(EX, "kubernetes", "keda-scaledobject.yaml")) as f:
            so = yaml.safe_load(f)
        trig = so["spec"]["triggers"][0]
        self.assertEqual(trig["type"], "prometheus")
        q = trig["metadata"]["query"]
        # KEDA: GET /api/v1/query?query=...&time=now, the first sample's value.
        d = self.api("/api/v1/query", {"query": q, "time": str(self.end_s)})
        self.assertEqual(d["resultType"], "vector")
        self.assertAlmostEqual(float(d["result"][0]["value"][1]), sum(PODS.values()), places=6)
        self.assertLess(float(d["result"][0]["value"][1]), float(trig["metadata"]["threshold"]))  # 40 < 100: no scale-up


if __name__ == "__main__":
    peers.run_main()
