#!/usr/bin/python3
"""Integration tests of the TSDB admin API (POST /api/v1/admin/tsdb/delete_series and
clean_tombstones, only with --web.enable-admin-api) and of `tsdbctl delete`: deleted
samples are missing from every read path (query_range, export, remote read SAMPLES and
streamed chunks) while the other samples stay, after a restart and a kill -9 too, and
clean_tombstones keeps it so.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402
from tsdbtest import EQ, SAMPLES, STREAMED_XOR_CHUNKS  # noqa: E402

TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")
T0 = 1700000000000
STEP = 15000
N = 400
A = {"__name__": "temp", "host": "a"}
B = {"__name__": "temp", "host": "b"}
C = {"__name__": "load", "host": "a"}
DEL = "/api/v1/admin/tsdb/delete_series"
CLEAN = "/api/v1/admin/tsdb/clean_tombstones"
# Deleted: temp{host="a"} in [D0, D1] (ms, inclusive).
D0 = T0 + 100 * STEP
D1 = T0 + 250 * STEP


def samples(k):
    return [(T0 + i * STEP, float(i * 10 + k)) for i in range(N)]


def expected(labels, k, deleted):
    s = samples(k)
    if deleted and labels == A:
        s = [(t, v) for t, v in s if not D0 <= t <= D1]
    return s


def lookback(s):
    """What query_range over [T0, T0 + (N-1) * STEP] step 15s answers for samples s: the
    newest sample at most 5 minutes old at each step (PromQL's lookback)."""
    out = []
    for i in range(N):
        t = T0 + i * STEP
        prev = [(ts, v) for ts, v in s if t - 300000 <= ts <= t]
        if prev:
            out.append((t, prev[-1][1]))
    return out


class AdminTest(unittest.TestCase):
    def setUp(self):
        self.srv = tsdbtest.Server(["--web.enable-admin-api", "--out-of-order-window", "0"])
        self.srv.start()
        self.srv.import_jsonl([tsdbtest.jsonl_line(A, samples(0)),
                               tsdbtest.jsonl_line(B, samples(1)),
                               tsdbtest.jsonl_line(C, samples(2))])

    def tearDown(self):
        self.srv.cleanup()

    # -- reads
    def query_range(self, q):
        r = self.srv.get("/api/v1/query_range", {"query": q, "start": str(T0 / 1000),
                                                 "end": str((T0 + (N - 1) * STEP) / 1000),
                                                 "step": "15"})
        self.assertEqual(r.status, 200, r)
        return {tuple(sorted(x["metric"].items())): [(int(round(p[0] * 1000)), float(p[1]))
                                                     for p in x["values"]]
                for x in r.json()["data"]["result"]}

    def export(self):
        r = self.srv.get("/api/v1/export", {"match[]": '{__name__=~"temp|load"}'})
        self.assertEqual(r.status, 200, r)
        out = {}
        for line in r.text.splitlines():
            j = json.loads(line)
            out[tuple(sorted(j["metric"].items()))] = list(zip(j["timestamps"], j["values"]))
        return out

    def remote_read(self, accepted):
        q = [(T0, T0 + N * STEP, [(EQ, "__name__", "temp"), (EQ, "host", h)]) for h in "ab"]
        r = self.srv.remote_read(q, accepted=accepted)
        self.assertEqual(r.status, 200, r)
        out = {}
        if accepted == [SAMPLES]:
            for q in tsdbtest.read_response(r.body).results:
                for ts in q.timeseries:
                    key = tuple(sorted((l.name, l.value) for l in ts.labels))
                    out[key] = [(s.timestamp, s.value) for s in ts.samples]
        else:
            for f in tsdbtest.parse_frames(r.body):
                for cs in f.chunked_series:
                    key = tuple(sorted((l.name, l.value) for l in cs.labels))
                    got = out.setdefault(key, [])
                    for c in cs.chunks:
                        got.extend(tsdbtest.xor_decode(c.data))
            # Chunks may overlap; values come as bits.
            out = {k: sorted(set((t, tsdbtest.f64(v)) for t, v in s)) for k, s in out.items()}
        return out

    def check_all(self, deleted):
        want = {tuple(sorted(l.items())): expected(l, k, deleted) for k, l in enumerate((A, B, C))}
        self.assertEqual(self.query_range('{__name__=~"temp|load"}'),
                         {k: lookback(s) for k, s in want.items()})
        self.assertEqual(self.export(), {k: [(t, v) for t, v in s] for k, s in want.items()})
        ab = {k: v for k, v in want.items() if k != tuple(sorted(C.items()))}
        self.assertEqual(self.remote_read([SAMPLES]), ab)
        self.assertEqual(self.remote_read([STREAMED_XOR_CHUNKS]), ab)

    def delete(self, params):
        return self.srv.post_form(DEL, params)

    # -- tests
    def test_gated_by_flag(self):
        plain = tsdbtest.Server()
        try:
            plain.start()
            for path in (DEL, CLEAN):
                self.assertEqual(plain.post_form(path, {"match[]": "temp"}).status, 404)
                self.assertEqual(plain.get(path).status, 404)
        finally:
            plain.cleanup()
        self.assertEqual(self.srv.get(DEL, {"match[]": "temp"}).status, 405)
        self.assertEqual(self.srv.get(CLEAN).status, 405)

    def test_bad_requests(self):
        for params in ({}, {"match[]": "temp{"}, {"match[]": "temp", "start": "x"},
                       {"match[]": "temp", "start": "10", "end": "5"}):
            r = self.delete(params)
            self.assertEqual(r.status, 400, (params, r))
            j = r.json()
            self.assertEqual(j["status"], "error")
            self.assertEqual(j["errorType"], "bad_data")
        # PUT is served as POST (Prometheus registers both).
        self.assertEqual(self.srv.request("PUT", DEL, params={"match[]": "temp{"}).status, 400)
        self.assertEqual(self.srv.request("PUT", CLEAN).status, 204)
        self.check_all(False)

    def test_delete_then_every_read_path(self):
        self.check_all(False)
        r = self.delete({"match[]": 'temp{host="a"}', "start": str(D0 / 1000), "end": str(D1 / 1000)})
        self.assertEqual(r.status, 204, r)
        self.check_all(True)
        # Several match[]: a union; a range with nothing of B deletes nothing of B.
        r = self.delete([("match[]", 'temp{host="b"}'), ("match[]", "nothing"),
                         ("start", str((T0 + N * STEP) / 1000))])
        self.assertEqual(r.status, 204, r)
        self.check_all(True)
        # Restart (clean stop: heads stored, converted to cold).
        self.srv.restart()
        self.check_all(True)
        # kill -9: replay of the WAL must not bring anything back.
        self.srv.import_jsonl([tsdbtest.jsonl_line({"__name__": "other", "host": "z"},
                                                   [(T0 + N * STEP, 5.0)])])
        self.srv.kill()
        self.srv.start()
        r = self.srv.get("/api/v1/export", {"match[]": "other"})
        self.assertIn(str(T0 + N * STEP), r.text)
        self.check_all(True)

    def test_kill_right_after_delete(self):
        # Everything is in the WAL and the heads only; the tombstone must cover replay.
        r = self.delete({"match[]": 'temp{host="a"}', "start": str(D0 / 1000), "end": str(D1 / 1000)})
        self.assertEqual(r.status, 204, r)
        self.srv.kill()
        self.srv.start()
        self.check_all(True)

    def test_clean_tombstones(self):
        r = self.delete({"match[]": 'temp{host="a"}', "start": str(D0 / 1000), "end": str(D1 / 1000)})
        self.assertEqual(r.status, 204, r)
        self.srv.restart()  # the data is stored now
        r = self.srv.post(CLEAN, b"")
        self.assertEqual(r.status, 204, r)
        self.check_all(True)
        self.srv.kill()
        self.srv.start()
        self.check_all(True)
        self.srv.restart()
        self.check_all(True)

    def test_tsdbctl_delete(self):
        def ctl(*args):
            return subprocess.run([TSDBCTL] + list(args), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=120)
        args = ["delete", "--data-dir", self.srv.data_dir, "--match", 'temp{host="a"}',
                "--start", str(D0 // 1000), "--end", str(D1 // 1000)]
        p = ctl(*args)  # the server holds the directory
        self.assertEqual(p.returncode, 3, p)
        self.assertIn(b"locked", p.stderr)
        self.srv.stop()
        p = ctl(*args)
        self.assertEqual(p.returncode, 0, p)
        self.assertIn(b"1 series", p.stdout)
        p = ctl("delete", "--data-dir", self.srv.data_dir)
        self.assertEqual(p.returncode, 2, p)
        self.srv.start()
        self.check_all(True)
        self.srv.stop()
        p = ctl(*(args + ["--clean"]))
        self.assertEqual(p.returncode, 0, p)
        self.assertIn(b"clean_tombstones", p.stdout)
        self.srv.start()
        self.check_all(True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
