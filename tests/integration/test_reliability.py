#!/usr/bin/python3
"""Reliability regressions: inputs that once gave wrong answers or lost an acknowledged
sample, each checked through the real server, before and after the data reaches the
index (a restart writes every series' postings).

- negative matchers that match "" keep series whose value is longer than a posting key
  holds (long values are cut in the postings and must be re-checked, not excluded);
- a regex over a long value answers as Prometheus (RE2) does: a match-limit error of the
  regex engine is never a silent "no match";
- timestamps at the int64 edges: outside the storable range (+-2^62 ms) a sample is
  refused with 400 (it was once acknowledged and then lost when its partition's bounds
  overflowed); the range's own edges are stored and survive a restart;
- a remote-write 2.0 body sent with the 1.0 Content-Type is refused with 400, not
  answered 204 with nothing stored;
- memory that decode bombs made the request scratch grow to is given back afterwards;
- connections that hold every slot while doing nothing do not lock new clients out.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

T0 = 1700000000000
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def series_of(srv, match, start=None, end=None):
    params = [("match[]", match)]
    if start is not None:
        params.append(("start", str(start)))
    if end is not None:
        params.append(("end", str(end)))
    r = srv.get("/api/v1/series", params)
    if r.status != 200:
        raise AssertionError("series %s: %r" % (match, r))
    return sorted(json.dumps(s, sort_keys=True) for s in r.json()["data"])


class Reliability(unittest.TestCase):
    srv = None

    @classmethod
    def setUpClass(cls):
        # No future limit, so the far edge of the storable range can be written.
        cls.srv = tsdbtest.Server(["--max-future", "0"]).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.srv.cleanup()

    def both_ways(self, check):
        """Runs check() on series the index does not hold yet and again after a restart."""
        check()
        self.assertEqual(self.srv.stop(), 0)
        self.srv.start()
        check()

    def test_negative_matchers_keep_long_values(self):
        s = self.srv
        lines = []
        for n in (1, 249, 250, 251, 300, 4000):
            lines.append(tsdbtest.jsonl_line({"__name__": "lv", "v": "x" * n, "n": str(n)},
                                             [(T0, float(n))]))
        lines.append(tsdbtest.jsonl_line({"__name__": "lv", "n": "none"}, [(T0, 0.0)]))
        s.import_jsonl(lines)
        every = series_of(s, "lv")
        self.assertEqual(len(every), 7)

        def check():
            self.assertEqual(series_of(s, 'lv{v!="zzz"}'), every)
            self.assertEqual(series_of(s, 'lv{v!~"z+"}'), every)
            # Excluding one long value drops exactly that series.
            long300 = series_of(s, 'lv{n="300"}')
            self.assertEqual(len(long300), 1)
            rest = sorted(set(every) - set(long300))
            self.assertEqual(series_of(s, 'lv{v!="%s"}' % ("x" * 300)), rest)
            # Two long values sharing the 250-byte prefix are told apart.
            self.assertEqual(len(series_of(s, 'lv{v="%s"}' % ("x" * 251))), 1)
            self.assertEqual(len(series_of(s, 'lv{v=~"x{251}"}')), 1)
            self.assertEqual(len(series_of(s, 'lv{v!~"x{251}"}')), 6)

        self.both_ways(check)

    def test_regex_on_long_values_never_misses(self):
        s = self.srv
        val = "ab" * 2000 + "c"  # 4,001 bytes
        s.import_jsonl([
            tsdbtest.jsonl_line({"__name__": "rx", "v": val}, [(T0, 1.0)]),
            tsdbtest.jsonl_line({"__name__": "rx", "v": "d"}, [(T0, 2.0)]),
        ])

        def check():
            self.assertEqual(len(series_of(s, 'rx{v=~"(a|b)*c"}')), 1)
            self.assertEqual(len(series_of(s, 'rx{v!~"(a|b)*c"}')), 1)
            self.assertEqual(len(series_of(s, 'rx{v=~"(a|b)*(c|d)"}')), 2)
            self.assertEqual(len(series_of(s, 'rx{v!~"((a|b)*c|d)"}')), 0)
            r = s.get("/api/v1/query", {"query": 'count(rx{v=~"(a|b)*c"})', "time": str(T0 / 1000)})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["data"]["result"][0]["value"][1], "1")

        self.both_ways(check)

    def test_timestamps_at_the_int64_edges(self):
        s = self.srv
        # Outside +-2^62 ms nothing is stored and the sender is told why.
        for t in (INT64_MIN, INT64_MIN + 1, -(1 << 62) - 1, (1 << 62) + 1, INT64_MAX):
            r = s.post("/api/v1/import", (json.dumps({
                "metric": {"__name__": "tedge_bad"}, "values": [1.0],
                "timestamps": [t]}) + "\n").encode())
            self.assertEqual(r.status, 400, (t, r))
            self.assertIn(str(t), r.text)
        # The edges themselves are stored and survive a restart.
        edges = [-(1 << 62), -(1 << 62) + 1, -1, 0, (1 << 62) - 1, 1 << 62]
        r = s.post("/api/v1/import", (json.dumps({
            "metric": {"__name__": "tedge"}, "values": [float(i) for i in range(len(edges))],
            "timestamps": edges}) + "\n").encode())
        self.assertEqual(r.status, 204, r)

        def check():
            r = s.get("/api/v1/export", {"match[]": "tedge"})
            self.assertEqual(r.status, 200, r)
            got = [json.loads(l) for l in r.text.splitlines() if l]
            self.assertEqual(sum(len(g["timestamps"]) for g in got), len(edges), r.text)
            self.assertEqual(sorted(t for g in got for t in g["timestamps"]), edges)
            r = s.get("/api/v1/export", {"match[]": "tedge_bad"})
            self.assertEqual(r.text.strip(), "")

        self.both_ways(check)


class Mismatch(unittest.TestCase):
    def test_rw2_body_with_rw1_content_type_is_refused(self):
        srv = tsdbtest.Server().start()
        try:
            with open(os.path.join(tsdbtest.TESTDATA, "rw", "rw2_basic.sz"), "rb") as f:
                body = f.read()
            r = srv.post("/api/v1/write", body, {
                "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0"})
            self.assertEqual(r.status, 400, r)
            self.assertIn("remote write 2.0", r.text)
            self.assertEqual(srv.get("/api/v1/series", {"match[]": '{__name__=~".+"}'})
                             .json()["data"], [])
            # Sent as what it is, the same body is stored (its native histogram samples
            # are refused on their own: "3 samples stored; 2 native histogram ...").
            r = srv.post("/api/v1/write", body, {
                "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "2.0.0"})
            self.assertIn(r.status, (204, 400), r)
            self.assertNotIn("remote write 2.0 request", r.text)
            self.assertGreater(len(srv.get("/api/v1/series", {"match[]": '{__name__=~".+"}'})
                                   .json()["data"]), 0)
        finally:
            srv.stop()
            srv.cleanup()


class DecodeBombs(unittest.TestCase):
    def test_memory_returns_after_bombs(self):
        """Bodies that decompress to just under the 32 MiB decoded limit and then fail
        to decode: each worker's scratch grows to that size; afterwards it is given back,
        not pooled for the life of the process."""
        import threading
        import snappy
        srv = tsdbtest.Server().start()
        try:
            body = snappy.compress(b"\x00" * ((32 << 20) - 1024))
            hd = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                  "X-Prometheus-Remote-Write-Version": "0.1.0"}
            rss_kb = lambda: int(open("/proc/%d/status" % srv.proc.pid).read()
                                 .split("VmRSS:")[1].split()[0])
            rss0 = rss_kb()
            statuses = []

            def send():
                for _ in range(3):
                    statuses.append(srv.post("/api/v1/write", body, hd).status)

            threads = [threading.Thread(target=send) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            self.assertEqual(sorted(set(statuses)), [400], statuses)
            rss1 = rss_kb()
            self.assertLess(rss1 - rss0, 24 * 1024, "RSS %d kB before, %d kB after" % (rss0, rss1))
            # Normal requests still work, and reuse pooled scratch.
            r = srv.remote_write([({"__name__": "after_bombs"}, [(T0, 1.0)])])
            self.assertEqual(r.status, 204, r)
        finally:
            srv.stop()
            srv.cleanup()


class MemoryAreas(unittest.TestCase):
    def test_memory_by_area_adds_up(self):
        """/metrics says where the engine's memory goes: series objects grow with the
        series and their labels, open chunks equal tsdb_head_chunk_bytes, and the heap
        in use covers every area."""
        srv = tsdbtest.Server().start()
        try:
            def areas():
                r = srv.get("/metrics")
                self.assertEqual(r.status, 200, r)
                m = peers.parse_metrics(r.text)
                return m, {a: peers.metric(m, "tsdb_memory_bytes", area=a)
                           for a in ("series", "head_chunks", "pending_chunks",
                                     "out_of_order", "registry")}
            _, a0 = areas()
            value = "v" * 200
            batch = [({"__name__": "mem_area", "i": str(i), "long": value},
                      [(T0 + k * 15000, float(k)) for k in range(10)]) for i in range(2000)]
            r = srv.remote_write(batch)
            self.assertEqual(r.status, 204, r)
            m, a1 = areas()
            self.assertEqual(peers.metric(m, "tsdb_series"), 2000)
            # Each series holds at least its labels' bytes.
            self.assertGreater(a1["series"] - a0["series"], 2000 * 200)
            self.assertLess(a1["series"] - a0["series"], 2000 * 1024)
            self.assertEqual(a1["head_chunks"], peers.metric(m, "tsdb_head_chunk_bytes"))
            self.assertGreater(a1["head_chunks"], 0)
            self.assertGreater(a1["registry"], 2000 * 8)
            self.assertGreaterEqual(peers.metric(m, "process_heap_bytes", state="in_use"),
                                    sum(a1.values()))
        finally:
            srv.stop()
            srv.cleanup()


class BlockCache(unittest.TestCase):
    def test_block_cache_reported(self):
        """Cold blocks opened by queries are counted in tsdb_memory_bytes{area="block_cache"},
        with misses for the first read of a block and hits for the next."""
        srv = tsdbtest.Server().start()
        try:
            batch = [({"__name__": "cached", "i": str(i)},
                      [(T0 + k * 15000, float(k * i)) for k in range(200)]) for i in range(50)]
            self.assertEqual(srv.remote_write(batch).status, 204)
            srv.stop()  # a clean stop turns what was written into cold blocks
            srv.start()

            def cache():
                m = peers.parse_metrics(srv.get("/metrics").text)
                return (peers.metric(m, "tsdb_memory_bytes", area="block_cache"),
                        peers.metric(m, "tsdb_block_cache_hits_total"),
                        peers.metric(m, "tsdb_block_cache_misses_total"))
            b0, h0, m0 = cache()
            self.assertEqual(b0, 0)
            q = {"query": "sum(cached)", "start": str(T0 // 1000), "end": str(T0 // 1000 + 2985),
                 "step": "15"}
            r1 = srv.get("/api/v1/query_range", q)
            self.assertEqual(r1.status, 200, r1)
            b1, h1, m1 = cache()
            self.assertGreater(b1, 0)
            self.assertGreater(m1, m0)
            r2 = srv.get("/api/v1/query_range", q)
            self.assertEqual(r2.json(), r1.json())
            b2, h2, m2 = cache()
            self.assertEqual(m2, m1)
            self.assertGreater(h2, h1)
            self.assertEqual(b2, b1)
        finally:
            srv.stop()
            srv.cleanup()


class ConnectionSlots(unittest.TestCase):
    def test_idle_connections_do_not_lock_out_clients(self):
        """Every slot held by a client that connected and sent nothing (or half a request
        head): a new client is still served, at once, and the slots it took are counted."""
        import socket
        srv = tsdbtest.Server(["--max-connections", "40"]).start()
        socks = []
        try:
            for i in range(40):
                so = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                if i % 2:
                    so.sendall(b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\n")  # slowloris
                socks.append(so)
            time.sleep(0.3)
            for _ in range(5):
                r = srv.get("/-/healthy", timeout=5)
                self.assertEqual(r.status, 200, r)
                r = srv.remote_write([({"__name__": "slots"}, [(T0, 1.0)])])
                self.assertEqual(r.status, 204, r)
            m = srv.get("/metrics").text
            shed = [l for l in m.splitlines() if l.startswith("tsdb_http_connections_shed_total ")]
            self.assertEqual(len(shed), 1, m)
            self.assertGreaterEqual(float(shed[0].split()[1]), 1)
        finally:
            for so in socks:
                so.close()
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    tsdbtest.main()
