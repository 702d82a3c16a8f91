#!/usr/bin/python3
"""Integration tests of POST /api/v1/admin/tsdb/snapshot (Prometheus' snapshot API, only
with --web.enable-admin-api): the answer names a directory under <data-dir>/snapshots
that a second tsdbd and tsdbctl open as it is; it holds every batch acknowledged before
the call, each batch whole or not at all while writes go on, and nothing written after
it; closed (cold, downsampled) partitions and data still in memory both come along;
skip_head leaves the WAL out; bad parameters get 400, and without the flag 404.
"""
import json
import os
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402

TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")
DAY = 86400000
NOW = tsdbtest.now_ms()
OLD = NOW // DAY * DAY - 5 * DAY  # closed partitions
SNAP = "/api/v1/admin/tsdb/snapshot"




class SnapshotTest(unittest.TestCase):
    def setUp(self):
        self.srv = tsdbtest.Server(["--web.enable-admin-api"])
        self.srv.start()
        self.others = []

    def tearDown(self):
        for o in self.others:
            o.cleanup()
        self.srv.cleanup()

    def open_copy(self, name):
        d = os.path.join(self.srv.data_dir, "snapshots", name)
        out = subprocess.run([TSDBCTL, "verify", "--data-dir", d], capture_output=True,
                             text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        o = tsdbtest.Server([], data_dir=d)
        self.others.append(o)
        o.start()
        return o

    def test_consistent_copy_while_writing(self):
        # Old data (compacted and downsampled at a restart) and recent data in memory.
        self.srv.import_jsonl([tsdbtest.jsonl_line({"__name__": "old", "k": str(k)},
                                                   [(OLD + i * 15000, float(i)) for i in range(5760)])
                               for k in range(3)])
        self.srv.restart()
        self.srv.import_jsonl([tsdbtest.jsonl_line({"__name__": "recent"},
                                                   [(NOW - 600000 + i * 1000, 1.0) for i in range(300)])])
        # Batches of two series, each batch one request, written during the snapshot.
        stop = threading.Event()
        acked = []

        def writer():
            i = 0
            while not stop.is_set() and i < 3000:
                t = NOW - 300000 + i * 10
                body = (tsdbtest.jsonl_line({"__name__": "pair", "side": "a"}, [(t, float(i))]) + "\n" +
                        tsdbtest.jsonl_line({"__name__": "pair", "side": "b"}, [(t, float(i))]) + "\n")
                r = self.srv.post("/api/v1/import", body.encode())
                if r.status == 204:
                    acked.append(i)
                i += 1

        th = threading.Thread(target=writer)
        th.start()
        while len(acked) < 50:
            pass
        before = len(acked)
        r = self.srv.post(SNAP, b"")
        self.assertEqual(r.status, 200, r)
        name = r.json()["data"]["name"]
        self.assertRegex(name, r"^\d{8}T\d{6}Z-[0-9a-f]{16}$")
        stop.set()
        th.join()
        full = tsdbtest.export_all(self.srv)
        o = self.open_copy(name)
        got = tsdbtest.export_all(o)
        # Everything written before the writer started, exactly.
        for k, v in full.items():
            if dict(k)["__name__"] in ("old", "recent"):
                self.assertEqual(got.get(k), v, k)
        # Pairs: whole batches only, every batch acknowledged before the call included,
        # and a prefix of the acknowledged ones.
        a = [v for _, v in got.get((("__name__", "pair"), ("side", "a")), [])]
        b = [v for _, v in got.get((("__name__", "pair"), ("side", "b")), [])]
        self.assertEqual(a, b)
        self.assertGreaterEqual(len(a), before)
        self.assertEqual([float(i) for i in acked[:len(a)]], [float(x) for x in a])
        # The copy is a data directory of its own: it takes writes without touching the
        # original.
        o.import_jsonl([tsdbtest.jsonl_line({"__name__": "only_in_copy"}, [(NOW, 1.0)])])
        self.assertNotIn((("__name__", "only_in_copy"),), tsdbtest.export_all(self.srv))

    def test_skip_head_and_errors(self):
        self.srv.import_jsonl([tsdbtest.jsonl_line({"__name__": "old"},
                                                   [(OLD + i * 15000, float(i)) for i in range(100)])])
        self.srv.restart()
        r = self.srv.post(SNAP, b"", params={"skip_head": "true"})
        self.assertEqual(r.status, 200, r)
        o = self.open_copy(r.json()["data"]["name"])
        self.assertEqual(len(tsdbtest.export_all(o)[(("__name__", "old"),)]), 100)
        r = self.srv.post(SNAP, b"", params={"skip_head": "maybe"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["errorType"], "bad_data")
        r = self.srv.request("PUT", SNAP)
        self.assertEqual(r.status, 200, r)
        r = self.srv.get(SNAP)
        self.assertEqual(r.status, 405, r)

    def test_needs_admin_flag(self):
        s = tsdbtest.Server([])
        self.others.append(s)
        s.start()
        self.assertEqual(s.post(SNAP, b"").status, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
