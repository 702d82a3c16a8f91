#!/usr/bin/python3
"""The Thanos StoreAPI (--grpc-listen) through a client generated from the project's own
wire/proto files (Thanos' packages and field numbers) with Debian's python3-grpc-tools,
over Debian's python3-grpcio.

- Info (thanos.info.Info/Info and the Store service's older Info): component "store",
  the external label set, a min_time at or before the oldest sample.
- Series for several matcher sets and windows: every series of the HTTP API's
  /api/v1/export for the same selection comes back with the external labels merged in,
  sorted, and its chunks decode to exactly the exported samples in the window (value
  bits, stale markers included; chunks are time-ordered and never overlap);
  skip_chunks gives labels only; limit bounds the series.
- Matchers on external labels: a match selects as if the matcher were absent, a
  mismatch selects nothing; an external label replaces a stored label of the same name.
- LabelNames / LabelValues equal /api/v1/labels and /api/v1/label/<name>/values plus
  the external labels, with matchers and limit honoured.
- Downsampled reads (max_resolution_window 5m/1h over tiers `tsdbctl downsample`
  built): each AggrChunk's count, sum, min and max equal those of the raw samples of
  each window, and the counter aggregate grows by the raw counter's increase.
- Remote read carries the external labels too.
- Bad input: a malformed request, a bad regex, an unknown method, an unknown matcher
  type give INVALID_ARGUMENT / UNIMPLEMENTED, and the server keeps serving.
- Tenants: the tenant header as gRPC metadata picks the tenant's series only.
"""
import importlib
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

try:
    import grpc
    from grpc_tools import protoc
except ImportError:  # pragma: no cover - deps.sh installs both
    grpc = None

PROTO_DIR = os.path.join(tsdbtest.SRCDIR, "wire", "proto")
TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")
MIN = 60000
DAY = 86400000
EXT = {"region": "eu", "shard": "s1"}


def gen_stubs():
    """Python modules from wire/proto/*.proto, in a temporary directory on sys.path."""
    out = tempfile.mkdtemp(prefix="storeapi-pb-")
    args = ["protoc", "-I" + PROTO_DIR, "--python_out=" + out, "--grpc_python_out=" + out,
            os.path.join(PROTO_DIR, "thanos_store.proto"), os.path.join(PROTO_DIR, "thanos_info.proto")]
    if protoc.main(args) != 0:
        raise RuntimeError("grpc_tools.protoc failed")
    sys.path.insert(0, out)
    return tuple(importlib.import_module(m) for m in
                 ("thanos_store_pb2", "thanos_store_pb2_grpc", "thanos_info_pb2", "thanos_info_pb2_grpc"))


def start(args):
    srv = peers.Tsdbd(["--grpc-listen", "127.0.0.1:0"] + args, name="storeapi")
    srv.start()
    srv.grpc_port = grpc_port(srv)
    return srv


def grpc_port(srv):
    with open(srv.log_path, "rb") as f:
        return int(re.findall(rb"StoreAPI \(gRPC\) on \S+, grpc port (\d+)", f.read())[-1])


def connect(cls, srv):
    """cls.srv, cls.chan and cls.store for a started tsdbd with --grpc-listen."""
    cls.srv = srv
    srv.grpc_port = grpc_port(srv)
    cls.chan = grpc.insecure_channel("127.0.0.1:%d" % srv.grpc_port)
    cls.store = cls.sg.StoreStub(cls.chan)


def close(cls):
    if getattr(cls, "chan", None):
        cls.chan.close()
    if getattr(cls, "srv", None):
        cls.srv.stop()
        cls.srv.cleanup()


def labels_key(labels):
    return tuple((l.name, l.value) for l in labels)


class StoreAPI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            cls.setup()
        except BaseException:
            close(cls)  # tearDownClass does not run when setUpClass fails
            raise

    @classmethod
    def setup(cls):
        if grpc is None:
            raise unittest.SkipTest("python3-grpcio / python3-grpc-tools missing (scripts/deps.sh test)")
        cls.s, cls.sg, cls.i, cls.ig = gen_stubs()
        ext = sum((["--external-label", "%s=%s" % kv] for kv in EXT.items()), [])
        cls.srv = start(ext)
        cls.end = tsdbtest.now_ms() // MIN * MIN - 5 * MIN
        cls.start_ms = cls.end - 6 * 3600000
        lines = []
        # Counters with resets, gauges, a series whose stored "shard" label the external
        # one replaces, special values and a stale marker.
        for job in ("api", "db"):
            for inst in range(3):
                lab = {"__name__": "req_total", "job": job, "instance": "h%d" % inst}
                pts, v = [], 0.0
                for k in range(0, 6 * 60):
                    v = 0.0 if k == 200 + inst else v + (k % 7) + inst
                    pts.append((cls.start_ms + k * MIN + inst * 1000, v))
                lines.append(tsdbtest.jsonl_line(lab, pts))
                g = {"__name__": "temp", "job": job, "instance": "h%d" % inst}
                lines.append(tsdbtest.jsonl_line(g, [(cls.start_ms + k * 30000, 20 + math.sin(k / 9.0) * 5 + inst)
                                                     for k in range(6 * 120)]))
        # A series that stops early, and a label only it has: windows tell them apart.
        lines.append(tsdbtest.jsonl_line({"__name__": "early_only", "gone": "soon"},
                                         [(cls.start_ms + k * MIN, 1.0) for k in range(10)]))
        r = cls.srv.post("/api/v1/import", "\n".join(lines).encode())
        assert r.status == 204, r
        # Special values and a stale marker go through remote write (JSON cannot say them).
        r = cls.srv.remote_write([({"__name__": "odd", "shard": "stored"},
                                   [(cls.start_ms + MIN, float("inf")), (cls.start_ms + 2 * MIN, -0.0),
                                    (cls.start_ms + 3 * MIN, float("nan")),
                                    (cls.start_ms + 4 * MIN, tsdbtest.f64(tsdbtest.STALE_NAN_BITS))])])
        assert r.status == 204, r
        connect(cls, cls.srv)

    @classmethod
    def tearDownClass(cls):
        close(cls)

    def m(self, t, name, value):
        return self.s.LabelMatcher(type=t, name=name, value=value)

    def series(self, matchers, mint, maxt, **kw):
        req = self.s.SeriesRequest(min_time=mint, max_time=maxt, matchers=matchers, **kw)
        return [r.series for r in self.store.Series(req, timeout=30) if r.HasField("series")]

    def want(self, selector, mint, maxt):
        """The export API's samples of selector in [mint, maxt], keyed by labels with the
        external ones merged in."""
        got = peers.export(self.srv, selector, mint / 1000.0, maxt / 1000.0)
        out = {}
        for key, pts in got.items():
            d = dict(key)
            d.update(EXT)
            out[tuple(sorted(d.items()))] = [(t, v) for t, v in pts if mint <= t <= maxt]
        return out

    # ---- Info

    def test_info(self):
        r = self.ig.InfoStub(self.chan).Info(self.i.InfoRequest(), timeout=10)
        self.assertEqual(r.ComponentType, "store")
        self.assertEqual([labels_key(ls.labels) for ls in r.label_sets], [tuple(sorted(EXT.items()))])
        self.assertLessEqual(r.store.min_time, self.start_ms)
        self.assertGreaterEqual(r.store.max_time, self.end)
        old = self.store.Info(self.s.InfoRequest(), timeout=10)
        self.assertEqual(old.storeType, self.s.STORE)
        self.assertEqual(labels_key(old.labels), tuple(sorted(EXT.items())))
        self.assertEqual(old.min_time, r.store.min_time)

    # ---- Series

    def check_series(self, selector, matchers, mint, maxt):
        want = self.want(selector, mint, maxt)
        got = self.series(matchers, mint, maxt)
        keys = [labels_key(s.labels) for s in got]
        self.assertEqual(keys, sorted(keys), "series must come sorted")
        self.assertEqual(len(keys), len(set(keys)))
        want = {k: v for k, v in want.items() if v}
        self.assertEqual(sorted(keys), sorted(want), selector)
        n = 0
        for s in got:
            pts, last = [], None
            for c in s.chunks:
                self.assertTrue(c.HasField("raw"))
                smp = tsdbtest.xor_decode(c.raw.data)
                self.assertEqual((smp[0][0], smp[-1][0]), (c.min_time, c.max_time))
                if last is not None:
                    self.assertGreater(c.min_time, last, "chunks overlap")
                last = c.max_time
                # The export API leaves stale markers out (the special-values test
                # checks the StoreAPI sends them).
                pts += [(t, b) for t, b in smp if mint <= t <= maxt and b != tsdbtest.STALE_NAN_BITS]
            exp = want[labels_key(s.labels)]
            self.assertEqual([t for t, _ in pts], [t for t, _ in exp], labels_key(s.labels))
            for (t, b), (_, v) in zip(pts, exp):
                self.assertTrue(peers.same_value(tsdbtest.f64(b), v), (labels_key(s.labels), t, b, v))
                n += 1
        return n

    def test_series_equal_export(self):
        a, b = self.start_ms, self.end
        total = 0
        for sel, ms, lo, hi in (
                ('req_total', [self.m(0, "__name__", "req_total")], a, b),
                ('{__name__=~"req_total|temp",job="db"}',
                 [self.m(2, "__name__", "req_total|temp"), self.m(0, "job", "db")], a + 3600000, b - 3600000),
                ('temp{instance!="h1"}', [self.m(0, "__name__", "temp"), self.m(1, "instance", "h1")],
                 a + 17 * MIN + 1, a + 95 * MIN),
                ('{__name__=~".+",job!~"a.*"}', [self.m(2, "__name__", ".+"), self.m(3, "job", "a.*")], a, b)):
            total += self.check_series(sel, ms, lo, hi)
        self.assertGreater(total, 5000)

    def test_special_values_and_replaced_label(self):
        got = self.series([self.m(0, "__name__", "odd")], self.start_ms, self.end)
        self.assertEqual(len(got), 1)
        self.assertEqual(dict(labels_key(got[0].labels))["shard"], "s1")
        bits = [b for c in got[0].chunks for _, b in tsdbtest.xor_decode(c.raw.data)]
        self.assertEqual(bits[0], tsdbtest.bits(float("inf")))
        self.assertEqual(bits[1], tsdbtest.bits(-0.0))
        self.assertTrue(math.isnan(tsdbtest.f64(bits[2])))
        self.assertEqual(bits[3], tsdbtest.STALE_NAN_BITS)

    def test_external_label_matchers(self):
        all_req = self.series([self.m(0, "__name__", "req_total")], self.start_ms, self.end)
        self.assertEqual(len(all_req), 6)
        same = self.series([self.m(0, "__name__", "req_total"), self.m(0, "region", "eu")],
                           self.start_ms, self.end)
        self.assertEqual([labels_key(s.labels) for s in same], [labels_key(s.labels) for s in all_req])
        for ms in ([self.m(0, "region", "us")], [self.m(2, "shard", "s[2-9]")],
                   [self.m(0, "__name__", "req_total"), self.m(1, "region", "eu")]):
            self.assertEqual(self.series(ms, self.start_ms, self.end), [])
        # The stored shard="stored" is not what a reader sees: the external label is.
        self.assertEqual(self.series([self.m(0, "shard", "stored")], self.start_ms, self.end), [])

    def test_skip_chunks_and_limit(self):
        got = self.series([self.m(0, "__name__", "temp")], self.start_ms, self.end, skip_chunks=True)
        self.assertEqual(len(got), 6)
        self.assertTrue(all(len(s.chunks) == 0 for s in got))
        got = self.series([self.m(2, "__name__", ".+")], self.start_ms, self.end, limit=4)
        self.assertEqual(len(got), 4)
        # A window with no samples: no series at all.
        self.assertEqual(self.series([self.m(0, "__name__", "temp")], self.end + DAY, self.end + 2 * DAY), [])

    # ---- LabelNames, LabelValues

    def test_label_names_and_values(self):
        names = self.store.LabelNames(self.s.LabelNamesRequest(start=self.start_ms, end=self.end), timeout=10)
        http = self.srv.get("/api/v1/labels").json()["data"]
        self.assertEqual(list(names.names), sorted(set(http) | set(EXT)))
        vals = self.store.LabelValues(self.s.LabelValuesRequest(label="instance", start=self.start_ms,
                                                                end=self.end), timeout=10)
        self.assertEqual(list(vals.values), self.srv.get("/api/v1/label/instance/values").json()["data"])
        vals = self.store.LabelValues(self.s.LabelValuesRequest(
            label="job", start=self.start_ms, end=self.end, matchers=[self.m(0, "instance", "h2")], limit=1),
            timeout=10)
        self.assertEqual(list(vals.values), ["api"])
        ext = self.store.LabelValues(self.s.LabelValuesRequest(label="shard", start=self.start_ms,
                                                               end=self.end), timeout=10)
        self.assertEqual(list(ext.values), ["s1"])
        # Time windows are honoured: the early series and its label are out of the last
        # hour, in the whole range.
        late = self.store.LabelValues(self.s.LabelValuesRequest(label="__name__", start=self.end - 3600000,
                                                                end=self.end), timeout=10)
        self.assertNotIn("early_only", list(late.values))
        self.assertIn("temp", list(late.values))
        early = self.store.LabelValues(self.s.LabelValuesRequest(label="__name__", start=self.start_ms,
                                                                 end=self.start_ms + 5 * MIN), timeout=10)
        self.assertIn("early_only", list(early.values))
        late_names = self.store.LabelNames(self.s.LabelNamesRequest(start=self.end - 3600000, end=self.end),
                                           timeout=10)
        self.assertNotIn("gone", list(late_names.names))
        self.assertIn("region", list(late_names.names))
        self.assertIn("gone", list(names.names))
        none = self.store.LabelNames(self.s.LabelNamesRequest(
            start=self.start_ms, end=self.end, matchers=[self.m(0, "region", "us")]), timeout=10)
        self.assertEqual(list(none.names), [])

    # ---- remote read

    def test_remote_read_has_external_labels(self):
        body = tsdbtest.read_request([(self.start_ms, self.end, [(0, "__name__", "odd")])])
        r = self.srv.post("/api/v1/read", body, {"Content-Type": "application/x-protobuf",
                                                 "Content-Encoding": "snappy",
                                                 "X-Prometheus-Remote-Read-Version": "0.1.0"})
        self.assertEqual(r.status, 200, r)
        import snappy
        resp = tsdbtest.pb.ReadResponse()
        resp.ParseFromString(snappy.uncompress(r.body))
        ts = resp.results[0].timeseries
        self.assertEqual(len(ts), 1)
        self.assertEqual({(l.name, l.value) for l in ts[0].labels},
                         {("__name__", "odd"), ("region", "eu"), ("shard", "s1")})
        body = tsdbtest.read_request([(self.start_ms, self.end, [(0, "region", "us")])])
        r = self.srv.post("/api/v1/read", body, {"Content-Type": "application/x-protobuf",
                                                 "Content-Encoding": "snappy"})
        resp = tsdbtest.pb.ReadResponse()
        resp.ParseFromString(snappy.uncompress(r.body))
        self.assertEqual(len(resp.results[0].timeseries), 0)

    # ---- bad input

    def test_bad_requests(self):
        raw = self.chan.unary_stream("/thanos.Store/Series", request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
        for body in (b"\x0a\xff\xff\xff\xff\x0f", b"\x1a\x05\x08\x07\x12\x01a",  # type 7
                     b"\x1a\x04\x12\x00\x1a\x00"):  # empty name
            with self.assertRaises(grpc.RpcError) as e:
                list(raw(body, timeout=10))
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, body)
        with self.assertRaises(grpc.RpcError) as e:
            self.series([self.m(2, "job", "(")], self.start_ms, self.end)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("regular expression", e.exception.details())
        with self.assertRaises(grpc.RpcError) as e:
            self.series([self.m(0, "job", "a\x00b")], self.start_ms, self.end)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as e:
            self.series([self.m(0, "job", "api")], self.end, self.start_ms)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        nope = self.chan.unary_unary("/thanos.Store/Nope", request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as e:
            nope(b"", timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        lv = self.chan.unary_unary("/thanos.Store/LabelValues", request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as e:
            lv(b"", timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # Still serving.
        self.assertEqual(len(self.series([self.m(0, "__name__", "temp")], self.start_ms, self.end)), 6)


class Tenants(unittest.TestCase):
    def test_tenant_from_metadata(self):
        if grpc is None:
            raise unittest.SkipTest("python3-grpcio missing")
        st, sg, _, _ = gen_stubs()
        srv = start(["--tenant-header", "X-Scope-OrgID", "--query.max-series", "1"])
        chan = None
        try:
            t = tsdbtest.now_ms() - 60000
            for tenant, job in (("team-a", "a"), (None, "dflt")):
                hd = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                      "X-Prometheus-Remote-Write-Version": "0.1.0"}
                if tenant:
                    hd["X-Scope-OrgID"] = tenant
                r = srv.post("/api/v1/write", tsdbtest.write_request([({"__name__": "up", "job": job},
                                                                        [(t, 1.0)])]), hd)
                self.assertEqual(r.status, 204, r)
            chan = grpc.insecure_channel("127.0.0.1:%d" % srv.grpc_port)
            store = sg.StoreStub(chan)
            req = st.SeriesRequest(min_time=t - 1000, max_time=t + 1000,
                                   matchers=[st.LabelMatcher(type=0, name="__name__", value="up")])

            def jobs(md):
                return [dict(labels_key(r.series.labels))["job"]
                        for r in store.Series(req, metadata=md, timeout=10)]
            self.assertEqual(jobs((("x-scope-orgid", "team-a"),)), ["a"])
            self.assertEqual(jobs(()), ["dflt"])
            self.assertEqual(jobs((("x-scope-orgid", "team-b"),)), [])
            with self.assertRaises(grpc.RpcError) as e:
                jobs((("x-scope-orgid", ".."),))
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            # Two tenants' series would pass the limit of 1 together; each alone does not.
            req2 = st.SeriesRequest(min_time=t - 1000, max_time=t + 1000,
                                    matchers=[st.LabelMatcher(type=2, name="__name__", value="up|x")])
            self.assertEqual(len(list(store.Series(req2, timeout=10))), 1)
            r = srv.post("/api/v1/write", tsdbtest.write_request([({"__name__": "x"}, [(t, 1.0)])]),
                         {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                          "X-Prometheus-Remote-Write-Version": "0.1.0"})
            self.assertEqual(r.status, 204, r)
            with self.assertRaises(grpc.RpcError) as e:
                list(store.Series(req2, timeout=10))
            self.assertEqual(e.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("--query.max-series", e.exception.details())
            names = store.LabelNames(st.LabelNamesRequest(start=t - 1000, end=t + 1000),
                                     metadata=(("x-scope-orgid", "team-a"),), timeout=10)
            self.assertEqual(list(names.names), ["__name__", "job"])
        finally:
            if chan:
                chan.close()
            srv.stop()
            srv.cleanup()


class Downsampled(unittest.TestCase):
    """Tiers over old data: AggrChunks equal the raw samples' aggregates per window."""

    @classmethod
    def setUpClass(cls):
        try:
            cls.setup()
        except BaseException:
            close(cls)
            raise

    @classmethod
    def setup(cls):
        if grpc is None:
            raise unittest.SkipTest("python3-grpcio / python3-grpc-tools missing")
        cls.s, cls.sg, _, _ = gen_stubs()
        cls.end = tsdbtest.now_ms() // DAY * DAY - 2 * DAY
        cls.start_ms = cls.end - 2 * DAY
        cls.raw = {}
        srv = cls.srv = peers.Tsdbd([], name="storeapi-ds")
        srv.start()
        lines = []
        for name, fn in (("g", lambda k: round(50 + 20 * math.sin(k / 97.0), 3)),
                         ("c", lambda k: float((k % 1700) * 3 + 1))):  # a counter with resets
            pts = [(cls.start_ms + 7000 + k * 20000, fn(k)) for k in range((cls.end - cls.start_ms) // 20000)]
            cls.raw[name] = pts
            lines.append(tsdbtest.jsonl_line({"__name__": name, "job": "ds"}, pts))
        r = srv.post("/api/v1/import", "\n".join(lines).encode())
        assert r.status == 204, r
        srv.stop()
        p = subprocess.run([TSDBCTL, "downsample", "--data-dir", srv.data_dir], capture_output=True,
                           text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        srv.args += ["--grpc-listen", "127.0.0.1:0"]
        srv.start()
        connect(cls, srv)

    @classmethod
    def tearDownClass(cls):
        close(cls)

    def read(self, name, res, aggrs):
        req = self.s.SeriesRequest(min_time=self.start_ms, max_time=self.end, max_resolution_window=res,
                                   aggregates=aggrs,
                                   matchers=[self.s.LabelMatcher(type=0, name="__name__", value=name)])
        out = [r.series for r in self.store.Series(req, timeout=60) if r.HasField("series")]
        self.assertEqual(len(out), 1)
        return out[0]

    def test_aggregates_equal_raw_windows(self):
        for res in (300000, 3600000):
            s = self.read("g", res, [self.s.COUNT, self.s.SUM, self.s.MIN, self.s.MAX])
            pts = {}
            for c in s.chunks:
                self.assertFalse(c.HasField("raw"))
                cols = [tsdbtest.xor_decode(getattr(c, a).data) for a in ("count", "sum", "min", "max")]
                self.assertTrue(all(len(x) == len(cols[0]) for x in cols))
                for j in range(len(cols[0])):
                    t = cols[0][j][0]
                    self.assertTrue(all(x[j][0] == t for x in cols))
                    pts[t] = [tsdbtest.f64(x[j][1]) for x in cols]
            self.assertGreater(len(pts), 40)
            windows = {}
            for t, v in self.raw["g"]:
                windows.setdefault(t // res, []).append(v)
            rows = 0
            for t, (cnt, sm, mn, mx) in pts.items():
                w = windows[t // res]
                if cnt == 1 and len(w) > 1:
                    continue  # a raw sample of a span the tier does not cover
                rows += 1
                self.assertEqual(cnt, len(w), t)
                self.assertAlmostEqual(sm, sum(w), delta=1e-9 * abs(sum(w)) + 1e-9)
                self.assertEqual((mn, mx), (min(w), max(w)))
            self.assertGreater(rows, 40, res)

    def test_reads_over_tiers_and_open_data(self):
        """Reads spanning tiered and open partitions: a series whose open samples are
        all NaN (the counter read drops NaN, the sum read keeps it), and series created
        while a counter read runs, must neither crash nor fail the call."""
        now = tsdbtest.now_ms()
        r = self.srv.post("/api/v1/write", tsdbtest.write_request(
            [({"__name__": "n", "job": "ds"}, [(now - 60000 + k * 1000, float("nan")) for k in range(5)])]),
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
             "X-Prometheus-Remote-Write-Version": "0.1.0"})
        self.assertEqual(r.status, 204, r)
        stop = threading.Event()

        def churn():
            k = 0
            while not stop.is_set() and k < 150:
                lines = [tsdbtest.jsonl_line({"__name__": "c", "job": "ds", "pod": "p%d" % (k * 10 + i)},
                                             [(tsdbtest.now_ms() - 1000, 1.0)]) for i in range(10)]
                self.srv.post("/api/v1/import", "\n".join(lines).encode())
                k += 1
        w = threading.Thread(target=churn, daemon=True)
        w.start()
        try:
            for aggrs in ([self.s.COUNTER], [self.s.MIN], [self.s.COUNT, self.s.SUM]) * 4:
                req = self.s.SeriesRequest(min_time=self.start_ms, max_time=now, max_resolution_window=300000,
                                           aggregates=aggrs,
                                           matchers=[self.s.LabelMatcher(type=0, name="job", value="ds")])
                got = [x.series for x in self.store.Series(req, timeout=60) if x.HasField("series")]
                self.assertGreaterEqual(len(got), 2, aggrs)
        finally:
            stop.set()
            w.join(30)

    def test_counter_grows_by_the_raw_increase(self):
        s = self.read("c", 300000, [self.s.COUNTER])
        pts = [(t, tsdbtest.f64(b)) for c in s.chunks for t, b in tsdbtest.xor_decode(c.counter.data)]
        self.assertGreater(len(pts), 100)
        vals = [v for _, v in pts]
        self.assertEqual(vals, sorted(vals), "the counter aggregate never decreases")
        raw = self.raw["c"]

        def increase_to(t):
            inc, prev = 0.0, None
            for rt, v in raw:
                if rt > t:
                    break
                if prev is not None:
                    inc += v - prev if v >= prev else v
                prev = v
            return inc
        (t0, v0), (t1, v1) = pts[0], pts[-1]
        self.assertAlmostEqual(v1 - v0, increase_to(t1) - increase_to(t0), delta=1e-6 * v1)


if __name__ == "__main__":
    tsdbtest.main()
