#!/usr/bin/python3
"""End to end: Prometheus (Debian's 2.42) remote-reading from tsdbd.

tsdbd holds the differential test's data (promdiff.generate: counters with resets,
gauges, histogram buckets, gaps, stale markers, special values), restarted after the
load so that everything is read back from what it recovers; a Prometheus with an
empty TSDB, no scrape targets and `remote_read: [{url: <tsdbd>/api/v1/read,
read_recent: true}]` must answer the query set (promql_queries.txt, at a few instants
and over a few ranges) exactly as tsdbd's own /api/v1/query(_range) does (promdiff.compare:
same label sets, values within relative 1e-6, NaN equal, same errorType).

Prometheus reaches tsdbd through a byte-for-byte recording proxy, which shows what it
asks for (2.42's client accepts only SAMPLES). Both response types are also checked
directly: a ReadRequest POSTed from here for several matcher sets and time windows must
return exactly the samples that were written (timestamps and value bits, stale markers
included), decoded from SAMPLES and from STREAMED_XOR_CHUNKS.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import promdiff  # noqa: E402
import test_promql_diff  # noqa: E402
import tsdbtest  # noqa: E402

QUERIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "promql_queries.txt")
TIME_BUDGET_S = 100

PROM_CONFIG = """
global:
  scrape_interval: 1m
  evaluation_interval: 1m
scrape_configs: []
remote_read:
  - url: http://127.0.0.1:%(port)d/api/v1/read
    read_recent: true
    remote_timeout: 30s
"""

INSTANTS = (
    lambda s, e: e,
    lambda s, e: s + 3700,
    lambda s, e: e - 1500.25,
)
RANGES = (
    lambda s, e: (s + 60, e, 120),
    lambda s, e: (s + 3500, s + 4100, 7),
)

# Queries whose answer through Prometheus' remote read differs from tsdbd's own, with
# the reason: where tsdbd's evaluator is known to differ from Prometheus' (the
# differential test's list, same reasons), and nothing that is remote read's own.
KNOWN_DIFFERENCES = dict(test_promql_diff.KNOWN_DIFFERENCES)


def _key(labels):
    return tuple(sorted(labels.items()))


class RemoteReadE2ETest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t0 = time.monotonic()
        end_s = int(time.time()) // 60 * 60 - 60
        cls.end_ms = end_s * 1000
        cls.span = ((cls.end_ms - promdiff.SPAN_MS) // 1000, end_s)
        cls.data = promdiff.generate(cls.end_ms)
        cls.srv = peers.Tsdbd([], name="rr-e2e")
        cls.proxy = None
        cls.prom = None
        try:
            cls.srv.start()
            promdiff.load(promdiff.rw_sender(cls.srv.port), promdiff.time_slices(cls.data))
            # Reads come from what tsdbd recovers on start, not from what it just took in.
            cls.srv.restart()
            cls.proxy = promdiff.RecordingProxy(cls.srv.port).start()
            cls.prom = peers.Prometheus(PROM_CONFIG % {"port": cls.proxy.port})
            cls.prom.start()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _cleanup(cls):
        if cls.prom:
            cls.prom.cleanup()
        if cls.proxy:
            cls.proxy.stop()
        cls.srv.cleanup()

    @classmethod
    def tearDownClass(cls):
        if cls.prom:
            cls.prom.stop()
        rc = cls.srv.stop()
        log = cls.srv.log_tail()
        cls._cleanup()
        print("tsdbd exit code %s; total %.1fs" % (rc, time.monotonic() - cls.t0))
        if rc != 0:
            raise AssertionError("tsdbd exited with %s:\n%s" % (rc, log))

    # ---------------------------------------------------------------- via Prometheus

    def test_1_prometheus_answers_like_tsdbd(self):
        queries = promdiff.load_queries(QUERIES, self.span)
        s, e = self.span
        evals = [("instant@%+.2f" % (f(s, e) - e), "instant", (f(s, e),)) for f in INSTANTS]
        evals += [("range[%+.1f,%+.1f]/%g" % (f(s, e)[0] - e, f(s, e)[1] - e, f(s, e)[2]), "range", f(s, e))
                  for f in RANGES]
        pc = promdiff.QueryClient(self.prom.port, "prometheus")
        tc = promdiff.QueryClient(self.srv.port, "tsdbd")
        deadline = self.t0 + TIME_BUDGET_S
        equal, done, differ, known_seen, nonempty, n_evals = 0, 0, [], {}, 0, 0
        n_reads0 = len(self.proxy.requests)
        try:
            for no, q in queries:
                if time.monotonic() > deadline:
                    break
                diffs = []
                for name, kind, args in evals:
                    if kind == "instant":
                        a, b = pc.instant(q, *args), tc.instant(q, *args)
                    else:
                        a, b = pc.range(q, *args), tc.range(q, *args)
                    n_evals += 1
                    if a.get("status") == "success" and a["data"]["result"] and \
                            a["data"]["resultType"] in ("vector", "matrix"):
                        nonempty += 1
                    d = promdiff.compare(b, a, q)   # expected: tsdbd's own answer
                    if d:
                        diffs.append("%s: %s" % (name, d))
                done += 1
                if not diffs:
                    equal += 1
                elif q in KNOWN_DIFFERENCES:
                    known_seen[q] = diffs
                else:
                    differ.append((no, q, diffs))
        finally:
            pc.close()
            tc.close()
        reads = self.proxy.requests[n_reads0:]
        types = set()
        for path, hdr, body in reads:
            if path.startswith("/api/v1/read") and body:
                rr = tsdbtest.pb.ReadRequest()
                import snappy
                rr.ParseFromString(snappy.uncompress(body))
                types.add(tuple(rr.accepted_response_types) or ("(none: SAMPLES)",))
        print("\n==== remote read through Prometheus: %d queries x %d evaluations (%d non-empty "
              "vectors/matrices), %d remote-read requests, accepted_response_types %s: %d equal, "
              "%d known differences, %d unexpected differences" % (
                  done, len(evals), nonempty, len(reads), sorted(types), equal, len(known_seen), len(differ)))
        for q, diffs in known_seen.items():
            print("KNOWN  %s (see test_promql_diff.py)\n       %s" % (q, diffs[0][:300]))
        for no, q, diffs in differ:
            print("DIFF   line %d: %s" % (no, q))
            for d in diffs[:3]:
                print("         %s" % d[:500])
        self.assertEqual(done, len(queries), "time budget of %ds exceeded after %d queries" % (
            TIME_BUDGET_S, done))
        self.assertGreater(len(reads), 0, "Prometheus never called tsdbd's remote read")
        self.assertGreater(nonempty, n_evals // 2)
        self.assertFalse(differ, "%d queries answer differently through remote read" % len(differ))

    # ---------------------------------------------------------------- direct POSTs

    def _expected(self, lo, hi, pred):
        out = {}
        for labels, samples in self.data:
            if not pred(labels):
                continue
            pts = [(t, peers.STALE_BITS if v == promdiff.STALE else peers.bits(v))
                   for t, v in samples if lo <= t <= hi]
            if pts:
                out[_key(labels)] = pts
        return out

    CASES = (
        # (name, matchers, predicate, window start offset, window end offset) in ms
        # from the data's start; the windows cross resets, the down time and the gap.
        ("all api requests", [(tsdbtest.EQ, "__name__", "http_requests_total"), (tsdbtest.EQ, "job", "api")],
         lambda l: l["__name__"] == "http_requests_total" and l["job"] == "api", 3500000, 4100000),
        ("regex, whole span", [(tsdbtest.RE, "__name__", "node_temp.*|special_values")],
         lambda l: l["__name__"] in ("node_temperature_celsius", "special_values"), -60000, 9060000),
        ("negative matchers", [(tsdbtest.RE, "__name__", ".+"), (tsdbtest.NEQ, "job", "api"),
                               (tsdbtest.NRE, "instance", "node-.*|w[0-2]")],
         lambda l: l["job"] != "api" and not any(l.get("instance", "").startswith(p) for p in
                                                 ("node-", "w0", "w1", "w2")),
         4900000, 5500000),
        ("stale end", [(tsdbtest.EQ, "__name__", "batch_progress_ratio")],
         lambda l: l["__name__"] == "batch_progress_ratio", 5000000, 6000000),
        ("nothing", [(tsdbtest.EQ, "__name__", "nonexistent_metric")], lambda l: False, 0, 9000000),
    )

    def _check_direct(self, accepted):
        start = self.end_ms - promdiff.SPAN_MS
        total = 0
        for name, matchers, pred, a, b in self.CASES:
            lo, hi = start + a, start + b
            want = self._expected(lo, hi, pred)
            r = self.srv.post("/api/v1/read", tsdbtest.read_request([(lo, hi, matchers)], accepted),
                              {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                               "X-Prometheus-Remote-Read-Version": "0.1.0"}, timeout=60)
            self.assertEqual(r.status, 200, (name, r))
            got = {}
            if accepted and accepted[0] == tsdbtest.STREAMED_XOR_CHUNKS:
                self.assertTrue(r.headers.get("content-type", "").startswith(
                    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"), r.headers)
                prev_key = None
                for m in tsdbtest.parse_frames(r.body):
                    self.assertEqual(m.query_index, 0)
                    for cs in m.chunked_series:
                        key = tuple((l.name, l.value) for l in cs.labels)
                        self.assertEqual(list(key), sorted(key), name)
                        if key != prev_key:
                            self.assertNotIn(key, got, "series split across non-adjacent frames")
                            self.assertTrue(prev_key is None or key > prev_key, "series not sorted")
                        prev_key = key
                        pts = got.setdefault(key, [])
                        last_max = pts[-1][0] if pts else None
                        for ch in cs.chunks:
                            self.assertEqual(ch.type, 1)
                            smp = tsdbtest.xor_decode(ch.data)
                            self.assertTrue(smp, name)
                            self.assertEqual((smp[0][0], smp[-1][0]), (ch.min_time_ms, ch.max_time_ms))
                            self.assertTrue(ch.max_time_ms >= lo and ch.min_time_ms <= hi, "chunk outside range")
                            if last_max is not None:
                                self.assertGreater(ch.min_time_ms, last_max, "chunks overlap or out of order")
                            last_max = ch.max_time_ms
                            pts.extend(smp)
                got = {k: [(t, v) for t, v in p if lo <= t <= hi] for k, p in got.items()}
                got = {k: p for k, p in got.items() if p}
            else:
                self.assertEqual(r.headers.get("content-encoding"), "snappy")
                resp = tsdbtest.read_response(r.body)
                self.assertEqual(len(resp.results), 1)
                for ts in resp.results[0].timeseries:
                    key = tuple((l.name, l.value) for l in ts.labels)
                    self.assertNotIn(key, got)
                    got[key] = [(s.timestamp, peers.bits(s.value)) for s in ts.samples]
            self.assertEqual(sorted(got), sorted(want), name)
            for k in want:
                self.assertEqual(got[k], want[k], "%s: %s" % (name, k))
            total += sum(len(p) for p in want.values())
        return total

    def test_2_direct_samples(self):
        n = self._check_direct([tsdbtest.SAMPLES])
        n2 = self._check_direct([])
        print("SAMPLES: %d samples over %d requests exact (and again with no accepted type)" % (
            n, len(self.CASES)))
        self.assertEqual(n, n2)
        self.assertGreater(n, 1000)

    def test_3_direct_streamed_chunks(self):
        n = self._check_direct([tsdbtest.STREAMED_XOR_CHUNKS, tsdbtest.SAMPLES])
        print("STREAMED_XOR_CHUNKS: %d samples over %d requests exact" % (n, len(self.CASES)))
        self.assertGreater(n, 1000)


if __name__ == "__main__":
    peers.run_main()
