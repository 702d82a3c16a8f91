#!/usr/bin/python3
"""Integration tests of tsdbd's read side: the Prometheus HTTP query API, JSON-lines
export and Prometheus remote read (SAMPLES and STREAMED_XOR_CHUNKS), against the built
tsdbd with data loaded through /api/v1/import and remote write.
"""
import json
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402
from tsdbtest import EQ, NEQ, RE, NRE, SAMPLES, STREAMED_XOR_CHUNKS, bits, f64  # noqa: E402

T0 = 1700000000000
OLD = T0 - 30 * 86400 * 1000

UP_A = {"__name__": "up", "job": "api", "instance": "a"}
UP_B = {"__name__": "up", "job": "api", "instance": "b"}
UP_C = {"__name__": "up", "job": "db", "instance": "c"}
REQS = {"__name__": "http_requests_total", "job": "api", "code": "200"}
SPECIAL = {"__name__": "special_values", "kind": "x"}
OLDS = {"__name__": "old_series", "job": "old"}
STALE = {"__name__": "stale_series", "a": "b"}
OOO = {"__name__": "ooo_series", "x": "y"}

IN_ORDER = [(T0 + 60000 + i * 1000, float(i)) for i in range(200)]
OUT_OF_ORDER = [(T0 + 30500 + i * 2000, 1000.0 + i) for i in range(100)]


def sorted_labels(d):
    return dict(sorted(d.items()))


class ApiTest(unittest.TestCase):
    srv = None

    @classmethod
    def setUpClass(cls):
        cls.srv = tsdbtest.Server().start()
        s = cls.srv
        s.import_jsonl([
            tsdbtest.jsonl_line(UP_A, [(T0, 1), (T0 + 15000, 1), (T0 + 30000, 0)]),
            tsdbtest.jsonl_line(UP_B, [(T0, 1), (T0 + 15000, 1), (T0 + 30000, 1)]),
            tsdbtest.jsonl_line(UP_C, [(T0, 1), (T0 + 15000, 0), (T0 + 30000, 1)]),
            tsdbtest.jsonl_line(REQS, [(T0 + i * 15000, i * 10) for i in range(41)]),
            json.dumps({"metric": SPECIAL, "values": [1e6, 1.5e-7, None, "Inf", "-Inf", 0.1, 123456.789],
                        "timestamps": [T0 + i * 1000 for i in range(7)]}),
            tsdbtest.jsonl_line(OLDS, [(OLD, 5), (OLD + 1000, 6)]),
        ])
        r = s.remote_write([(STALE, [(T0, 1.0), (T0 + 1000, ("bits", tsdbtest.STALE_NAN_BITS))])],
                           metadata=[("http_requests_total", 1, "Requests served.", ""),
                                     ("temp_celsius", 2, "Temperature.", "celsius"),
                                     ("lat_seconds", 3, "Latency.", "seconds")])
        assert r.status == 204, r
        r = s.remote_write([(OOO, IN_ORDER)])
        assert r.status == 204, r
        r = s.remote_write([(OOO, OUT_OF_ORDER)])
        assert r.status == 204, r

    @classmethod
    def tearDownClass(cls):
        if cls.srv:
            rc = cls.srv.stop()
            log = cls.srv.log_tail()
            cls.srv.cleanup()
            # A clean exit: no crash, and no sanitizer report in an ASan build.
            assert rc == 0 and "Sanitizer" not in log, "tsdbd exited with %s:\n%s" % (rc, log)

    # -- helpers
    def ok(self, r):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), "application/json", r)
        j = r.json()
        self.assertEqual(j["status"], "success", r)
        return j

    def err(self, r, status, etype="bad_data", contains=None):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("content-type"), "application/json", r)
        j = r.json()
        self.assertEqual(set(j), {"status", "errorType", "error"}, r)
        self.assertEqual(j["status"], "error")
        self.assertEqual(j["errorType"], etype, r)
        if contains:
            self.assertIn(contains, j["error"])
        return j

    def evaluated(self, r):
        """A query answer that must come from the evaluator (not an error about it)."""
        self.assertNotIn(b"not implemented", r.body)
        return r

    # -- series
    def test_series_shape_and_union(self):
        j = self.ok(self.srv.get("/api/v1/series", [("match[]", "up")]))
        self.assertEqual(j, {"status": "success", "data": [sorted_labels(UP_A), sorted_labels(UP_B),
                                                           sorted_labels(UP_C)]})
        j = self.ok(self.srv.get("/api/v1/series", [("match[]", 'up{job="api"}'),
                                                    ("match[]", '{job="api",instance="b"}'),
                                                    ("match[]", 'http_requests_total')]))
        self.assertEqual(j["data"], [REQS, UP_A, UP_B])
        self.assertEqual(list(j["data"][0]), ["__name__", "code", "job"])

    def test_series_post_form_and_limit(self):
        j = self.ok(self.srv.post_form("/api/v1/series", [("match[]", "up"), ("limit", "2")]))
        self.assertEqual(len(j["data"]), 2)
        self.assertEqual(j["warnings"], ["results truncated due to limit"])
        # Parameters from the URL and the form body together.
        j = self.ok(self.srv.post("/api/v1/series", b"match%5B%5D=up",
                                  {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
                                  params=[("match[]", "old_series")]))
        self.assertEqual(len(j["data"]), 4)

    def test_series_time_range(self):
        j = self.ok(self.srv.get("/api/v1/series", [("match[]", '{job=~"old|db"}'),
                                                    ("start", str(T0 // 1000 - 60)),
                                                    ("end", str(T0 // 1000 + 60))]))
        self.assertEqual(j["data"], [UP_C])
        j = self.ok(self.srv.get("/api/v1/series", [("match[]", '{job=~"old|db"}'),
                                                    ("end", "2023-10-16T00:00:00Z")]))
        self.assertEqual(j["data"], [OLDS])

    def test_series_errors(self):
        self.err(self.srv.get("/api/v1/series"), 400, contains="no match[] parameter provided")
        self.err(self.srv.get("/api/v1/series", [("match[]", "up{")]), 400,
                 contains='invalid parameter "match[]"')
        self.err(self.srv.get("/api/v1/series", [("match[]", "up[5m]")]), 400)
        self.err(self.srv.get("/api/v1/series", [("match[]", "sum(up)")]), 400)
        self.err(self.srv.get("/api/v1/series", [("match[]", '{job=""}')]), 400)
        self.err(self.srv.get("/api/v1/series", [("match[]", '{job=~"("}')]), 400)
        self.err(self.srv.get("/api/v1/series", [("match[]", "up"), ("start", "yesterday")]), 400,
                 contains='invalid parameter "start": cannot parse "yesterday" to a valid timestamp')
        self.err(self.srv.get("/api/v1/series", [("match[]", "up"), ("limit", "x")]), 400,
                 contains='invalid parameter "limit"')
        self.err(self.srv.get("/api/v1/series", [("match[]", "up"), ("limit", "-1")]), 400)

    def test_malformed_form(self):
        r = self.srv.request("GET", "/api/v1/series?match[]=%zz")
        self.err(r, 400, contains="error parsing form values")
        r = self.srv.post("/api/v1/labels", b"match[]=%4", {"Content-Type": "application/x-www-form-urlencoded"})
        self.err(r, 400, contains="error parsing form values")

    # -- labels
    def test_labels(self):
        j = self.ok(self.srv.get("/api/v1/labels"))
        self.assertEqual(j["data"], ["__name__", "a", "code", "instance", "job", "kind", "x"])
        j = self.ok(self.srv.get("/api/v1/labels", [("match[]", "up"), ("match[]", "special_values")]))
        self.assertEqual(j["data"], ["__name__", "instance", "job", "kind"])
        j = self.ok(self.srv.get("/api/v1/labels", [("limit", "2")]))
        self.assertEqual(j["data"], ["__name__", "a"])
        self.assertEqual(j["warnings"], ["results truncated due to limit"])
        self.err(self.srv.get("/api/v1/labels", [("match[]", '{a=~"["}')]), 400)

    def test_label_values(self):
        j = self.ok(self.srv.get("/api/v1/label/job/values"))
        self.assertEqual(j["data"], ["api", "db", "old"])
        j = self.ok(self.srv.get("/api/v1/label/%6Aob/values"))
        self.assertEqual(j["data"], ["api", "db", "old"])
        j = self.ok(self.srv.get("/api/v1/label/__name__/values", [("match[]", '{job="api"}')]))
        self.assertEqual(j["data"], ["http_requests_total", "up"])
        j = self.ok(self.srv.get("/api/v1/label/instance/values", [("match[]", 'up{job="db"}'),
                                                                   ("match[]", 'up{instance="a"}')]))
        self.assertEqual(j["data"], ["a", "c"])
        j = self.ok(self.srv.get("/api/v1/label/nope/values"))
        self.assertEqual(j["data"], [])
        j = self.ok(self.srv.post_form("/api/v1/label/job/values", [("limit", "1")]))
        self.assertEqual(j, {"status": "success", "data": ["api"],
                             "warnings": ["results truncated due to limit"]})

    def test_label_values_errors(self):
        self.err(self.srv.get("/api/v1/label/1abc/values"), 400, contains='invalid label name: "1abc"')
        self.err(self.srv.get("/api/v1/label/a-b/values"), 400)
        self.err(self.srv.get("/api/v1/label/a%2/values"), 400)
        self.err(self.srv.get("/api/v1/label/job/values", [("match[]", "{")]), 400)
        self.err(self.srv.get("/api/v1/label/job/other"), 404, "not_found")

    # -- metadata and status
    def test_metadata(self):
        j = self.ok(self.srv.get("/api/v1/metadata"))
        self.assertEqual(j["data"], {
            "http_requests_total": [{"type": "counter", "help": "Requests served.", "unit": ""}],
            "lat_seconds": [{"type": "histogram", "help": "Latency.", "unit": "seconds"}],
            "temp_celsius": [{"type": "gauge", "help": "Temperature.", "unit": "celsius"}]})
        j = self.ok(self.srv.get("/api/v1/metadata", {"metric": "temp_celsius"}))
        self.assertEqual(list(j["data"]), ["temp_celsius"])
        j = self.ok(self.srv.get("/api/v1/metadata", {"limit": "1"}))
        self.assertEqual(list(j["data"]), ["http_requests_total"])
        j = self.ok(self.srv.get("/api/v1/metadata", {"metric": "nope"}))
        self.assertEqual(j["data"], {})
        self.err(self.srv.get("/api/v1/metadata", {"limit": "x"}), 400)

    def test_status_tsdb(self):
        j = self.ok(self.srv.get("/api/v1/status/tsdb"))["data"]
        self.assertEqual(set(j), {"headStats", "seriesCountByMetricName", "labelValueCountByLabelName",
                                  "memoryInBytesByLabelName", "seriesCountByLabelValuePair"})
        hs = j["headStats"]
        self.assertEqual(hs["numSeries"], 8)
        self.assertGreaterEqual(hs["chunkCount"], 8)
        self.assertEqual(hs["minTime"], OLD)
        self.assertEqual(hs["maxTime"], T0 + 600000)
        self.assertEqual(j["seriesCountByMetricName"][0], {"name": "up", "value": 3})
        self.assertLessEqual(len(j["seriesCountByLabelValuePair"]), 10)
        self.assertIn({"name": "job=api", "value": 3}, j["seriesCountByLabelValuePair"])
        self.assertEqual(j["labelValueCountByLabelName"][0], {"name": "__name__", "value": 6})
        names = {d["name"]: d["value"] for d in j["memoryInBytesByLabelName"]}
        self.assertEqual(names["job"], len("api") + len("db") + len("old"))
        j = self.ok(self.srv.get("/api/v1/status/tsdb", {"limit": "2"}))["data"]
        self.assertEqual(len(j["seriesCountByLabelValuePair"]), 2)

    # -- routing
    def test_unknown_and_wrong_method(self):
        self.assertEqual(self.srv.get("/api/v1/nothing").status, 404)
        self.assertEqual(self.srv.request("DELETE", "/api/v1/query").status, 405)
        self.assertEqual(self.srv.request("PUT", "/api/v1/series").status, 405)
        self.assertEqual(self.srv.get("/api/v1/read").status, 405)

    # -- query parameter validation (no evaluation needed)
    def test_query_bad_input(self):
        s = self.srv
        self.err(s.get("/api/v1/query"), 400,
                 contains='invalid parameter "query": 1:1: parse error: no expression found in input')
        self.err(s.get("/api/v1/query", {"query": "up", "time": "noon"}), 400,
                 contains='invalid parameter "time": cannot parse "noon" to a valid timestamp')
        self.err(s.get("/api/v1/query", {"query": "up", "timeout": "soon"}), 400,
                 contains='invalid parameter "timeout": cannot parse "soon" to a valid duration')
        self.err(s.get("/api/v1/query", {"query": "up", "limit": "1.5"}), 400)
        self.err(s.post_form("/api/v1/query", {"time": "1700000000"}), 400)

    def test_query_range_bad_input(self):
        s = self.srv
        q = {"query": "up", "start": "1700000000", "end": "1700003600", "step": "15s"}

        def rq(**kw):
            p = dict(q)
            for k, v in kw.items():
                if v is None:
                    p.pop(k)
                else:
                    p[k] = v
            return s.get("/api/v1/query_range", p)

        self.err(rq(start=None), 400, contains='invalid parameter "start": cannot parse "" to a valid timestamp')
        self.err(rq(end="x"), 400, contains='invalid parameter "end"')
        self.err(rq(end="1699999999"), 400, contains="end timestamp must not be before start time")
        self.err(rq(step=None), 400, contains='invalid parameter "step": cannot parse "" to a valid duration')
        self.err(rq(step="fast"), 400, contains='invalid parameter "step"')
        for st in ("0", "-15", "0s"):
            self.err(rq(step=st), 400, contains="zero or negative query resolution step widths are not "
                                                "accepted. Try a positive integer")
        self.err(rq(step="0.3"), 400, contains="exceeded maximum resolution of 11,000 points per timeseries. "
                                               "Try decreasing the query resolution (?step=XX)")
        self.err(rq(end="2023-11-15T00:00:00Z", start="2023-11-14T00:00:00Z", step="7s"), 400,
                 contains="exceeded maximum resolution of 11,000 points")
        self.err(rq(query=None), 400, contains="no expression found in input")
        self.err(rq(timeout="x"), 400)
        # Exactly 11,000 intervals is allowed (Prometheus compares with >).
        r = rq(start="0", end="11000", step="1")
        self.assertNotEqual(r.status, 400, r)

    # -- evaluation
    def test_query_scalar_health_check(self):
        r = self.evaluated(self.srv.get("/api/v1/query", {"query": "1+1", "time": "1700000000.123"}))
        self.assertEqual(r.body, b'{"status":"success","data":{"resultType":"scalar","result":[1700000000.123,"2"]}}')

    def test_query_vector(self):
        r = self.evaluated(self.srv.get("/api/v1/query", {"query": 'up{job="api"}', "time": "2023-11-14T22:13:50Z"}))
        j = self.ok(r)
        self.assertEqual(j["data"]["resultType"], "vector")
        self.assertEqual(j["data"]["result"], [
            {"metric": sorted_labels(UP_A), "value": [1700000030, "0"]},
            {"metric": sorted_labels(UP_B), "value": [1700000030, "1"]}])
        # KEDA-style: one element or none.
        j = self.ok(self.evaluated(self.srv.get("/api/v1/query", {"query": 'sum(up{job="db"})', "time": "1700000030"})))
        self.assertEqual(j["data"]["result"], [{"metric": {}, "value": [1700000030, "1"]}])
        j = self.ok(self.srv.get("/api/v1/query", {"query": 'sum(up{job="none"})', "time": "1700000030"}))
        self.assertEqual(j["data"], {"resultType": "vector", "result": []})

    def test_query_value_formatting(self):
        s = self.srv
        want = {0: "1000000", 1: "1.5e-07", 2: "NaN", 3: "+Inf", 4: "-Inf", 5: "0.1", 6: "123456.789"}
        for i, v in want.items():
            r = self.evaluated(s.get("/api/v1/query", {"query": "special_values", "time": str((T0 + i * 1000) / 1000)}))
            j = self.ok(r)
            self.assertEqual(j["data"]["result"][0]["value"][1], v)
        r = s.post_form("/api/v1/query", {"query": "1e21", "time": "1.5"})
        self.assertEqual(self.ok(r)["data"]["result"], [1.5, "1e+21"])
        r = s.get("/api/v1/query", {"query": "-0.000001", "time": "-1.001"})
        self.assertEqual(self.ok(r)["data"]["result"], [-1.001, "-0.000001"])

    def test_query_string(self):
        r = self.evaluated(self.srv.get("/api/v1/query", {"query": '"a\\"b"', "time": "100"}))
        self.assertEqual(self.ok(r)["data"], {"resultType": "string", "result": [100, 'a"b']})

    def test_query_range_matrix(self):
        r = self.evaluated(self.srv.get("/api/v1/query_range", {
            "query": 'up{instance="a"}', "start": "1700000000", "end": "1700000030", "step": "15s"}))
        j = self.ok(r)
        self.assertEqual(j["data"], {"resultType": "matrix", "result": [
            {"metric": sorted_labels(UP_A),
             "values": [[1700000000, "1"], [1700000015, "1"], [1700000030, "0"]]}]})
        r = self.srv.post_form("/api/v1/query_range", {"query": "1+1", "start": "1700000000",
                                                       "end": "1700000001", "step": "0.5"})
        j = self.ok(r)
        self.assertEqual(j["data"]["resultType"], "matrix")
        self.assertEqual(j["data"]["result"][0]["values"],
                         [[1700000000, "2"], [1700000000.5, "2"], [1700000001, "2"]])

    def test_query_limit(self):
        r = self.evaluated(self.srv.get("/api/v1/query", {"query": "up", "time": "1700000030", "limit": "1"}))
        j = self.ok(r)
        self.assertEqual(len(j["data"]["result"]), 1)
        self.assertEqual(j["warnings"], ["results truncated due to limit"])

    def test_query_errors(self):
        r = self.evaluated(self.srv.get("/api/v1/query", {"query": "up +", "time": "1"}))
        j = self.err(r, 400, contains='invalid parameter "query"')
        self.assertIn("parse error", j["error"])
        r = self.srv.get("/api/v1/query", {"query": 'up{job=~"("}', "time": "1"})
        self.err(r, 400)
        r = self.srv.get("/api/v1/query", {"query": "rate(up)", "time": "1"})
        self.err(r, 400)

    # -- export
    def export(self, params):
        r = self.srv.get("/api/v1/export", params)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("application/stream+json"), r.headers)
        return [json.loads(l) for l in r.text.splitlines()]

    def test_export(self):
        lines = self.export([("match[]", "up"), ("match[]", "special_values")])
        self.assertEqual([l["metric"] for l in lines], [SPECIAL, UP_A, UP_B, UP_C])
        self.assertEqual(list(lines[1]["metric"]), ["__name__", "instance", "job"])
        self.assertEqual(lines[1]["values"], [1, 1, 0])
        self.assertEqual(lines[1]["timestamps"], [T0, T0 + 15000, T0 + 30000])
        self.assertEqual(lines[0]["values"], [1e6, 1.5e-7, None, "Infinity", "-Infinity", 0.1, 123456.789])
        # Time range, POST form, stale markers left out.
        lines = self.export({"match[]": "http_requests_total", "start": str(T0 // 1000 + 15), "end": str(T0 // 1000 + 45)})
        self.assertEqual(lines[0]["timestamps"], [T0 + 15000, T0 + 30000, T0 + 45000])
        r = self.srv.post_form("/api/v1/export", {"match[]": "stale_series"})
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.text), {"metric": STALE, "values": [1], "timestamps": [T0]})
        self.assertEqual(self.export({"match[]": "nothing_here"}), [])

    def test_export_round_trip(self):
        lines = self.export({"match[]": '{__name__=~".+"}'})
        self.assertEqual(len(lines), 8)
        other = tsdbtest.Server().start()
        try:
            other.import_jsonl([json.dumps(l) for l in lines])
            r = other.get("/api/v1/export", {"match[]": '{__name__=~".+"}'})
            self.assertEqual([json.loads(l) for l in r.text.splitlines()], lines)
        finally:
            other.stop()
            other.cleanup()

    def test_export_errors(self):
        self.err(self.srv.get("/api/v1/export"), 400, contains="no match[] parameter provided")
        self.err(self.srv.get("/api/v1/export", {"match[]": "up{"}), 400)
        self.err(self.srv.get("/api/v1/export", {"match[]": '{a=~"*"}'}), 400)
        self.err(self.srv.get("/api/v1/export", {"match[]": "up", "start": "x"}), 400)
        self.err(self.srv.get("/api/v1/export", {"match[]": "up", "start": "10", "end": "5"}), 400)

    # -- remote read
    def test_remote_read_samples(self):
        r = self.srv.remote_read([
            (T0 + 15000, T0 + 30000, [(EQ, "__name__", "up"), (NEQ, "instance", "b")]),
            (T0, T0 + 1000, [(RE, "__name__", "stale_.*")]),
            (T0 + 1000, T0 + 2000, [(EQ, "__name__", "special_values")]),
            (T0, T0 + 1000, [(EQ, "__name__", "absent")]),
        ], accepted=[SAMPLES])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/x-protobuf")
        self.assertEqual(r.headers["content-encoding"], "snappy")
        m = tsdbtest.read_response(r.body)
        self.assertEqual(len(m.results), 4)
        res = [[({l.name: l.value for l in ts.labels}, [(s.timestamp, bits(s.value)) for s in ts.samples])
                for ts in q.timeseries] for q in m.results]
        self.assertEqual(res[0], [(UP_A, [(T0 + 15000, bits(1.0)), (T0 + 30000, bits(0.0))]),
                                  (UP_C, [(T0 + 15000, bits(0.0)), (T0 + 30000, bits(1.0))])])
        self.assertEqual(res[1], [(STALE, [(T0, bits(1.0)), (T0 + 1000, tsdbtest.STALE_NAN_BITS)])])
        self.assertEqual(res[2][0][1][0], (T0 + 1000, bits(1.5e-7)))
        self.assertTrue(math.isnan(f64(res[2][0][1][1][1])))
        self.assertEqual(res[3], [])
        # Out-of-order data comes back merged and sorted.
        m = tsdbtest.read_response(self.srv.remote_read([(T0, T0 + 3600000, [(EQ, "x", "y")])]).body)
        got = [(s.timestamp, s.value) for s in m.results[0].timeseries[0].samples]
        self.assertEqual(got, sorted(IN_ORDER + OUT_OF_ORDER))

    def chunked(self, queries):
        r = self.srv.remote_read(queries, accepted=[STREAMED_XOR_CHUNKS, SAMPLES])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"],
                         "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
        return tsdbtest.parse_frames(r.body)

    def test_remote_read_chunks(self):
        frames = self.chunked([(T0 + 15000, T0 + 15000, [(EQ, "__name__", "up")]),
                               (T0, T0 + 3600000, [(EQ, "__name__", "ooo_series")]),
                               (T0, T0, [(EQ, "__name__", "absent")])])
        self.assertEqual([f.query_index for f in frames], [0, 0, 0, 1])
        series = [({l.name: l.value for l in f.chunked_series[0].labels}, f.chunked_series[0].chunks)
                  for f in frames]
        self.assertEqual([s[0] for s in series], [UP_A, UP_B, UP_C, OOO])
        for labels, chunks in series[:3]:
            samples = [s for c in chunks for s in tsdbtest.xor_decode(c.data)]
            self.assertEqual([t for t, _ in samples], [T0, T0 + 15000, T0 + 30000])  # whole chunks
            self.assertEqual(chunks[0].type, 1)
        chunks = series[3][1]
        prev_max = None
        decoded = []
        for c in chunks:
            s = tsdbtest.xor_decode(c.data)
            self.assertTrue(s)
            self.assertEqual((c.min_time_ms, c.max_time_ms), (s[0][0], s[-1][0]))
            if prev_max is not None:
                self.assertGreater(c.min_time_ms, prev_max, "chunks overlap or are out of order")
            prev_max = c.max_time_ms
            decoded += s
        self.assertEqual(decoded, [(t, bits(v)) for t, v in sorted(IN_ORDER + OUT_OF_ORDER)])
        self.assertLessEqual(max(len(tsdbtest.xor_decode(c.data)) for c in chunks), 120)

    def test_remote_read_errors(self):
        s = self.srv
        r = s.post("/api/v1/read", b"not snappy at all", {"Content-Encoding": "snappy"})
        self.assertEqual(r.status, 400, r)
        import snappy
        r = s.post("/api/v1/read", snappy.compress(b"\xff\xff\xff"), {"Content-Encoding": "snappy"})
        self.assertEqual(r.status, 400, r)
        r = s.remote_read([(0, 1, [(RE, "a", "(")])])
        self.assertEqual(r.status, 400, r)
        self.assertIn(b"query 0", r.body)
        r = s.remote_read([(0, 1, [(EQ, "a", "b")]), (0, 1, [(NRE, "a", "[")])],
                          accepted=[STREAMED_XOR_CHUNKS])
        self.assertEqual(r.status, 400, r)
        r = s.post("/api/v1/read", tsdbtest.read_request([]), {"Content-Encoding": "gzip"})
        self.assertEqual(r.status, 415, r)

    def test_restart_keeps_reads_consistent(self):
        """After a restart (data recovered, chunks flushed), every read path agrees."""
        before = self.export({"match[]": '{__name__=~".+"}'})
        self.srv.restart()
        self.assertEqual(self.export({"match[]": '{__name__=~".+"}'}), before)
        frames = self.chunked([(T0, T0 + 3600000, [(EQ, "__name__", "ooo_series")])])
        decoded = [s for f in frames for c in f.chunked_series[0].chunks for s in tsdbtest.xor_decode(c.data)]
        self.assertEqual(decoded, [(t, bits(v)) for t, v in sorted(IN_ORDER + OUT_OF_ORDER)])


if __name__ == "__main__":
    tsdbtest.main()
