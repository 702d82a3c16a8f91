#!/usr/bin/python3
"""Integration tests of the Grafana JSON datasource under /grafana/ (simpod-json-datasource
and the older simple-json endpoints): every answer is checked for exact content and
validated against the plugin's OpenAPI schemas ($TS_TESTDATA/grafana-json/openapi.yaml)
with Debian's python3-jsonschema.

One deviation from the schema file: its table case declares each element of "rows" to be a
string or a number, while its own example (and Grafana) has rows as arrays of cells; the
table schema is corrected to that before validating.
"""
import copy
import os
import sys
import unittest

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402

T0 = 1700000000000
ISO_FROM = "2023-11-14T22:13:20.000Z"  # T0
ISO_TO = "2023-11-14T22:23:20.000Z"    # T0 + 600 s


def load_schemas():
    """{(path, field): JSON schema} from the OpenAPI file, $refs inlined."""
    with open(os.path.join(tsdbtest.TESTDATA, "grafana-json", "openapi.yaml")) as f:
        api = yaml.safe_load(f)
    comps = api["components"]["schemas"]

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(copy.deepcopy(comps[node["$ref"].rsplit("/", 1)[1]]))
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    out = {}
    for path, ops in api["paths"].items():
        for method, op in ops.items():
            ok = op.get("responses", {}).get("200", {})
            sch = ok.get("content", {}).get("application/json", {}).get("schema")
            if sch is not None:
                out[path] = inline(sch)
    table = out["/query"]["items"]["anyOf"][1]
    table["properties"]["rows"]["items"] = {
        "type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]}}
    return out


class GrafanaTest(unittest.TestCase):
    srv = None
    schemas = None

    @classmethod
    def setUpClass(cls):
        cls.schemas = load_schemas()
        cls.srv = tsdbtest.Server().start()
        lines = []
        for job, inst, vals in (("api", "a", [1, 1, 0]), ("api", "b", [1, 1, 1]), ("db", "c", [1, 0, 1])):
            lines.append(tsdbtest.jsonl_line({"__name__": "up", "job": job, "instance": inst},
                                             [(T0 + i * 300000, v) for i, v in enumerate(vals)]))
        for code, rate in (("200", 10), ("500", 1)):
            lines.append(tsdbtest.jsonl_line({"__name__": "http_requests_total", "job": "api", "code": code,
                                              "shard": "1" if code == "200" else "2"},
                                             [(T0 + i * 15000, i * rate) for i in range(41)]))
        cls.srv.import_jsonl(lines)

    @classmethod
    def tearDownClass(cls):
        if cls.srv:
            rc = cls.srv.stop()
            log = cls.srv.log_tail()
            cls.srv.cleanup()
            # A clean exit: no crash, and no sanitizer report in an ASan build.
            assert rc == 0 and "Sanitizer" not in log, "tsdbd exited with %s:\n%s" % (rc, log)

    def post(self, path, body, status=200):
        r = self.srv.post_json("/grafana" + path, body)
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("content-type"), "application/json", r)
        j = r.json()
        if status == 200 and path in self.schemas:
            jsonschema.validate(j, self.schemas[path])
        if status != 200:
            self.assertIsInstance(j.get("error"), str, r)
        return j

    def evaluated(self, path, body):
        r = self.srv.post_json("/grafana" + path, body)
        self.assertEqual(r.status, 200, r)
        j = r.json()
        if path in self.schemas:
            jsonschema.validate(j, self.schemas[path])
        return j

    def query_body(self, targets, **kw):
        b = {"range": {"from": ISO_FROM, "to": ISO_TO, "raw": {"from": "now-10m", "to": "now"}},
             "intervalMs": 100000, "maxDataPoints": 100, "targets": targets}
        b.update(kw)
        return b

    # -- plumbing
    def test_root_and_routing(self):
        for p in ("/grafana/", "/grafana"):
            self.assertEqual(self.srv.get(p).status, 200)
        self.assertEqual(self.srv.get("/grafana/query").status, 405)
        self.assertEqual(self.srv.post_json("/grafana/nope", {}).status, 404)

    def test_bad_bodies(self):
        for path in ("/metrics", "/query", "/variable", "/tag-values", "/search"):
            r = self.srv.post("/grafana" + path, b"{not json", {"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, (path, r))
            self.assertIn("error", r.json())
            r = self.srv.post("/grafana" + path, b"[1,2]", {"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, (path, r))

    # -- metric list and payload options
    def test_metrics(self):
        j = self.post("/metrics", {"metric": "", "payload": {}})
        self.assertEqual([m["value"] for m in j], ["http_requests_total", "up"])
        self.assertEqual(j[0]["label"], "http_requests_total")
        names = [p["name"] for p in j[0]["payloads"]]
        self.assertEqual(names, ["function", "range", "aggregation", "by", "format"])
        agg = j[0]["payloads"][2]
        self.assertEqual(agg["type"], "select")
        self.assertIn({"label": "sum", "value": "sum"}, agg["options"])
        # An empty body is an empty request.
        r = self.srv.post("/grafana/metrics", b"")
        self.assertEqual(r.status, 200, r)

    def test_payload_options(self):
        for path in ("/metric-payload-options", "/options"):
            j = self.post(path, {"metric": "up", "payload": {}, "name": "by"})
            self.assertEqual(j, [{"label": "instance", "value": "instance"}, {"label": "job", "value": "job"}])
            jsonschema.validate(j, self.schemas["/metric-payload-options"])
        j = self.post("/metric-payload-options", {"metric": "up", "payload": {}, "name": "function"})
        self.assertEqual(j[0], {"label": "none", "value": ""})
        self.assertIn({"label": "rate", "value": "rate"}, j)
        self.assertEqual(self.post("/metric-payload-options", {"metric": "up", "payload": {}, "name": "zzz"}), [])

    # -- ad-hoc filter keys and values
    def test_tag_keys_values(self):
        j = self.post("/tag-keys", {})
        self.assertEqual(j, [{"type": "string", "text": t} for t in
                             ("__name__", "code", "instance", "job", "shard")])
        j = self.post("/tag-values", {"key": "job"})
        self.assertEqual(j, [{"text": "api"}, {"text": "db"}])
        self.assertEqual(self.post("/tag-values", {"key": "nope"}), [])
        self.post("/tag-values", {}, status=400)

    # -- variables
    def test_variable(self):
        def var(target):
            return [(v["__text"], v["__value"]) for v in self.post("/variable", {
                "payload": {"target": target}, "range": {"from": ISO_FROM, "to": ISO_TO}})]

        self.assertEqual(var("label_values(job)"), [("api", "api"), ("db", "db")])
        self.assertEqual(var('label_values(up{job="api"}, instance)'), [("a", "a"), ("b", "b")])
        self.assertEqual(var("label_values({code=~\"5..\", job=\"api\"},shard)"), [("2", "2")])
        self.assertEqual(var("label_names()")[:2], [("__name__", "__name__"), ("code", "code")])
        self.assertEqual(var("metrics(http.*)"), [("http_requests_total", "http_requests_total")])
        self.assertEqual(len(var("")), 2)
        # Legacy body: the target at the top level.
        j = self.post("/variable", {"target": "label_values(instance)"})
        self.assertEqual([v["text"] for v in j], ["a", "b", "c"])
        self.post("/variable", {"payload": {"target": "whatever"}}, status=400)
        self.post("/variable", {"payload": {"target": "label_values(up{, job)"}}, status=400)
        self.post("/variable", {"payload": {"target": "label_values(1x)"}}, status=400)
        self.post("/variable", {"payload": {"target": "metrics(()"}}, status=400)

    def test_search_and_annotations(self):
        self.assertEqual(self.post("/search", {"target": ""}), ["http_requests_total", "up"])
        self.assertEqual(self.post("/search", {"target": "requests"}), ["http_requests_total"])
        self.assertEqual(self.post("/annotations", {"range": {"from": ISO_FROM, "to": ISO_TO},
                                                    "annotation": {"name": "x", "enable": True}}), [])

    # -- /query errors found before evaluation
    def test_query_bad_requests(self):
        self.post("/query", self.query_body([{"refId": "A", "target": "up +"}]), status=400)
        self.post("/query", self.query_body([{"refId": "A", "target": "up"}],
                                            filters=[{"key": "job", "operator": "~~", "value": "x"}]), status=400)
        self.post("/query", self.query_body([{"refId": "A", "target": "up"}],
                                            filters=[{"key": "1job", "operator": "=", "value": "x"}]), status=400)
        self.post("/query", self.query_body([{"refId": "A", "target": "up"}],
                                            filters=[{"key": "job", "operator": "<", "value": "abc"}]), status=400)
        self.post("/query", self.query_body([{"refId": "A", "target": "up"}], range={"from": "yesterday", "to": ISO_TO}),
                  status=400)
        self.post("/query", self.query_body([{"refId": "A", "target": "up"}], range={"from": ISO_TO, "to": ISO_FROM}),
                  status=400)
        self.post("/query", self.query_body([{"refId": "A", "target": "up", "payload": {"function": "system"}}]),
                  status=400)
        self.post("/query", self.query_body([{"refId": "A", "target": "up", "payload": {"by": ["a-b"]}}]), status=400)
        self.post("/query", self.query_body({"target": "up"}), status=400)
        # Nothing to evaluate: hidden and empty targets.
        self.assertEqual(self.post("/query", self.query_body([{"refId": "A", "target": "up", "hide": True},
                                                              {"refId": "B", "target": ""}])), [])

    # -- /query with evaluation
    def test_query_timeseries(self):
        j = self.evaluated("/query", self.query_body([{"refId": "A", "target": "up"}]))
        self.assertEqual([s["target"] for s in j], ['up{instance="a", job="api"}', 'up{instance="b", job="api"}',
                                                    'up{instance="c", job="db"}'])
        # step 100 s (T0 is a multiple of it), 5 min lookback.
        self.assertEqual(j[0]["datapoints"], [[1, T0 + k * 100000] for k in range(6)] + [[0, T0 + 600000]])

    def test_query_filters(self):
        for key in ("filters", "adhocFilters"):
            j = self.evaluated("/query", self.query_body(
                [{"refId": "A", "target": "up"}, {"refId": "B", "target": 'sum by (job) (up{instance!="c"})'}],
                **{key: [{"key": "job", "operator": "=", "value": "api"},
                         {"key": "instance", "operator": "=~", "value": "a|c"}]}))
            self.assertEqual([s["target"] for s in j], ['up{instance="a", job="api"}', '{job="api"}'])
            self.assertEqual(j[1]["datapoints"], [[1, T0 + k * 100000] for k in range(6)] + [[0, T0 + 600000]])
        j = self.evaluated("/query", self.query_body(
            [{"refId": "A", "target": "http_requests_total"}],
            filters=[{"key": "shard", "operator": ">", "value": "1"}]))
        self.assertEqual([s["target"] for s in j], ['http_requests_total{code="500", job="api", shard="2"}'])

    def test_query_payload_and_step(self):
        j = self.evaluated("/query", self.query_body(
            [{"refId": "A", "target": "http_requests_total",
              "payload": {"function": "rate", "range": "1m", "aggregation": "sum", "by": "job"}}],
            intervalMs=60000, maxDataPoints=5))
        self.assertEqual([s["target"] for s in j], ['{job="api"}'])
        # step = max(60 s, 600 s / 5) = 120 s; the start aligned down to a multiple of it is
        # T0 - 80 s, where the rate has no data yet.
        self.assertEqual([p[1] for p in j[0]["datapoints"]], [T0 - 80000 + k * 120000 for k in range(1, 6)])
        self.assertAlmostEqual(j[0]["datapoints"][-1][0], 11 / 15)

    def test_query_table(self):
        j = self.evaluated("/query", self.query_body([{"refId": "A", "target": 'up{job="api"}', "type": "table"}]))
        self.assertEqual(j, [{"type": "table",
                              "columns": [{"text": "Time", "type": "time"}, {"text": "__name__", "type": "string"},
                                          {"text": "instance", "type": "string"}, {"text": "job", "type": "string"},
                                          {"text": "Value", "type": "number"}],
                              "rows": [[T0 + 600000, "up", "a", "api", 0], [T0 + 600000, "up", "b", "api", 1]]}])
        j = self.evaluated("/query", self.query_body([{"refId": "A", "target": "1+1", "payload": {"format": "table"}}]))
        self.assertEqual(j[0]["rows"], [[T0 + 600000, 2]])


if __name__ == "__main__":
    tsdbtest.main()
