#!/usr/bin/python3
"""Integration tests of `tsdbctl backup`, `backup list|prune` and `tsdbctl restore`:
a backup of a running server (through its snapshot API) and of a stopped one; a backup
under continuous remote-write load holds every batch acknowledged before it began, each
batch whole; kill -9 during a backup leaves no backup listed and its snapshot is swept
by the next backup; kill -9 during a restore leaves nothing at the target; a second
backup after an hour of new data writes a small part of the first (content-addressed
objects); restore into an empty directory gives exactly the data of the backup (tsdbctl
verify passes, tsdbd serves it); a non-empty target is refused; a damaged object is
reported and nothing is restored; prune keeps the newest backups and deletes the
objects only the others used.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402

TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")
DAY = 86400000
HOUR = 3600000
STEP = 60000
NOW = tsdbtest.now_ms()
START = NOW - 20 * DAY


def ctl(*args):
    p = subprocess.run([TSDBCTL] + list(args), capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr




def written(out):
    m = re.search(r"(\d+) bytes \(.*\); (\d+) new objects, (\d+) bytes written", out)
    assert m, out
    return int(m.group(1)), int(m.group(3))


class BackupTest(unittest.TestCase):
    def setUp(self):
        self.srv = tsdbtest.Server(["--web.enable-admin-api"])
        self.srv.start()
        self.dest = os.path.join(self.srv.tmp, "backups")
        self.others = []
        # 20 days of 8 series at 60 s, ending an hour ago (closed partitions: cold).
        n = (NOW - HOUR - START) // STEP
        for k in range(8):
            s = [(START + i * STEP, float((i * (k + 1)) % 1000)) for i in range(n)]
            for a in range(0, n, 10000):
                self.srv.import_jsonl([tsdbtest.jsonl_line({"__name__": "m", "k": str(k)},
                                                           s[a:a + 10000])])
        self.srv.restart()  # closed partitions converted at the stop

    def tearDown(self):
        for o in self.others:
            o.cleanup()
        self.srv.cleanup()

    def restored(self, name=None):
        d = os.path.join(self.srv.tmp, "restored-%d" % len(self.others))
        args = ["restore", "--from", self.dest, "--data-dir", d] + (["--name", name] if name else [])
        rc, out, err = ctl(*args)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("every checksum matched", out)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 0, out + err)
        o = tsdbtest.Server([], data_dir=d)
        self.others.append(o)
        o.start()
        return o, d

    def test_backup_restore_incremental_prune(self):
        server = "127.0.0.1:%d" % self.srv.port
        # While the server runs: only through its snapshot API.
        rc, out, err = ctl("backup", "--data-dir", self.srv.data_dir, "--to", self.dest)
        self.assertEqual(rc, 3, out + err)
        want1 = tsdbtest.export_all(self.srv)
        rc, out, err = ctl("backup", "--data-dir", self.srv.data_dir, "--to", self.dest,
                           "--server", server)
        self.assertEqual(rc, 0, out + err)
        total1, wrote1 = written(out)
        self.assertGreater(wrote1, 0)
        self.assertFalse(os.listdir(os.path.join(self.srv.data_dir, "snapshots")),
                         "the snapshot is removed once backed up")
        # An hour of new data, then a second backup: only what changed is written.
        self.srv.import_jsonl([tsdbtest.jsonl_line({"__name__": "m", "k": str(k)},
                                                   [(NOW - HOUR + i * STEP, 1.0) for i in range(60)])
                               for k in range(8)])
        want2 = tsdbtest.export_all(self.srv)
        rc, out, err = ctl("backup", "--data-dir", self.srv.data_dir, "--to", self.dest,
                           "--server", server)
        self.assertEqual(rc, 0, out + err)
        total2, wrote2 = written(out)
        print("first backup: %d bytes read, %d written; second: %d read, %d written (%.1f %%)"
              % (total1, wrote1, total2, wrote2, 100.0 * wrote2 / wrote1), file=sys.stderr)
        self.assertLessEqual(wrote2, 0.4 * wrote1)
        rc, out, err = ctl("backup", "list", "--to", self.dest)
        self.assertEqual(rc, 0, out + err)
        names = [l.split()[0] for l in out.splitlines()]
        self.assertEqual(len(names), 2, out)
        # Restores: the newest, and the first by name.
        o, _ = self.restored()
        self.assertEqual(tsdbtest.export_all(o), want2)
        o, _ = self.restored(names[0])
        self.assertEqual(tsdbtest.export_all(o), want1)
        # Not into a directory with something in it.
        rc, out, err = ctl("restore", "--from", self.dest, "--data-dir", self.srv.data_dir)
        self.assertEqual(rc, 1)
        self.assertIn("not empty", err)
        # Prune to one: the first backup's own objects go, the second restores still.
        rc, out, err = ctl("backup", "prune", "--to", self.dest, "--keep", "1")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("1 backups removed, 1 kept", out)
        o, _ = self.restored()
        self.assertEqual(tsdbtest.export_all(o), want2)

    def test_backup_under_load_and_kill9(self):
        server = "127.0.0.1:%d" % self.srv.port
        snaps = os.path.join(self.srv.data_dir, "snapshots")
        acked, stop = [], threading.Event()
        base = NOW - 50 * 60000

        def writer():  # two series per batch, one sample each, for at most 60 s
            deadline = time.monotonic() + 60
            for i in range(20000):
                if stop.is_set() or time.monotonic() > deadline:
                    break
                t = base + i * 100
                r = self.srv.remote_write([({"__name__": "load", "s": "a"}, [(t, float(i))]),
                                           ({"__name__": "load", "s": "b"}, [(t, float(i))])])
                if r.status == 204:
                    acked.append((i, time.monotonic()))
        th = threading.Thread(target=writer)
        th.start()
        try:
            while len(acked) < 50:
                time.sleep(0.05)
            # kill -9 while the backup reads its snapshot
            p = subprocess.Popen([TSDBCTL, "backup", "--data-dir", self.srv.data_dir, "--to",
                                  self.dest, "--server", server],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while p.poll() is None and time.monotonic() < deadline:
                if os.path.isdir(snaps) and any(n.endswith(".backup") for n in os.listdir(snaps)):
                    break
                time.sleep(0.005)
            p.send_signal(signal.SIGKILL)
            killed = p.wait() == -signal.SIGKILL
            rc, out, err = ctl("backup", "list", "--to", self.dest)
            self.assertEqual(out.strip() == "", killed, out + err)
            # a backup while batches keep coming
            t_start = time.monotonic()
            rc, out, err = ctl("backup", "--data-dir", self.srv.data_dir, "--to", self.dest,
                               "--server", server)
            self.assertEqual(rc, 0, out + err)
            if killed:
                self.assertIn("left by an interrupted backup", err)
            self.assertEqual(os.listdir(snaps), [], "snapshots left behind")
        finally:
            stop.set()
            th.join()
        before = [i for i, t in acked if t < t_start]
        self.assertGreater(len(before), 50)
        # kill -9 during a restore: nothing at the target; a second restore works
        d = os.path.join(self.srv.tmp, "restore-killed")
        p = subprocess.Popen([TSDBCTL, "restore", "--from", self.dest, "--data-dir", d],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while p.poll() is None and time.monotonic() < deadline and not os.path.exists(d + ".restore-tmp"):
            time.sleep(0.002)
        p.send_signal(signal.SIGKILL)
        rkilled = p.wait() == -signal.SIGKILL
        if rkilled:
            self.assertFalse(os.path.exists(d), "a killed restore left a data directory")
        else:
            shutil.rmtree(d)
        o, _ = self.restored()
        got = tsdbtest.export_all(o)
        a = {int(v) for _, v in got.get((("__name__", "load"), ("s", "a")), [])}
        b = {int(v) for _, v in got.get((("__name__", "load"), ("s", "b")), [])}
        self.assertEqual(a, b, "a batch is half in the backup")
        self.assertTrue(set(before) <= a, "acknowledged before the backup began, missing: %s"
                        % sorted(set(before) - a)[:5])
        print("under load: %d batches acknowledged before the backup, %d in it; killed "
              "midway: backup %s, restore %s" % (len(before), len(a), killed, rkilled),
              file=sys.stderr)

    def test_damaged_object_and_offline_backup(self):
        self.srv.stop()
        rc, out, err = ctl("backup", "--data-dir", self.srv.data_dir, "--to", self.dest)
        self.assertEqual(rc, 0, out + err)
        # Flip a byte in the middle of the biggest object.
        objs = []
        for root, _, files in os.walk(os.path.join(self.dest, "objects")):
            objs += [os.path.join(root, f) for f in files]
        big = max(objs, key=os.path.getsize)
        with open(big, "r+b") as f:
            f.seek(os.path.getsize(big) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x40]))
        d = os.path.join(self.srv.tmp, "broken")
        rc, out, err = ctl("restore", "--from", self.dest, "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("damaged", err)
        self.assertFalse(os.path.exists(d))
        self.assertFalse(os.path.exists(d + ".restore-tmp"))
        # A damaged manifest is reported by list, and prune refuses to act on it.
        man = os.path.join(self.dest, "backups", os.listdir(os.path.join(self.dest, "backups"))[0])
        with open(man, "a") as f:
            f.write("file 1 0000000000000000 0 x\n")
        rc, out, err = ctl("backup", "list", "--to", self.dest)
        self.assertEqual(rc, 1)
        self.assertIn("damaged", out)
        rc, out, err = ctl("backup", "prune", "--to", self.dest, "--keep", "1")
        self.assertEqual(rc, 1, out + err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
