#!/usr/bin/python3
"""A full disk during ingest, on a real file system: tsdbd's data directory lives on a
small tmpfs that a ballast file fills while data streams in.

Expected, as VictoriaMetrics does it: writes are refused with 503 and Retry-After (never
a 2xx for data that was not kept), /-/ready says not ready and /metrics says why; when
the ballast goes, writes resume by themselves, without a restart. Every acknowledged
batch is there, whole, and every refused one is absent, whole: after the recovery, after
a clean restart and after kill -9.

Mounting needs root (CI runs as root); elsewhere the test is skipped and says so.
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402

SERIES = 40
PER_BATCH = 30  # samples per series per batch, 1 s apart


def batch_body(b, t0):
    # Values carry random fractions so the WAL cannot compress a batch to nothing (the
    # disk must fill); int(value) // 1000 still names the batch.
    rnd = random.Random(b)
    lines = []
    for k in range(SERIES):
        ts = [t0 + (b * PER_BATCH + i) * 1000 for i in range(PER_BATCH)]
        lines.append(json.dumps({"metric": {"__name__": "df", "k": "s%02d" % k},
                                 "values": [b * 1000 + i + rnd.random() * 0.999
                                            for i in range(PER_BATCH)],
                                 "timestamps": ts}))
    return ("\n".join(lines) + "\n").encode()


class DiskFull(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tsdb-diskfull-")
        self.mnt = os.path.join(self.tmp, "mnt")
        os.mkdir(self.mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            os.rmdir(self.tmp)
            self.skipTest("cannot mount a tmpfs here (needs root): %s" % r.stderr.strip())
        self.srv = None

    def tearDown(self):
        if self.srv:
            self.srv.stop()
            self.srv.cleanup()
        subprocess.run(["umount", self.mnt], check=False)
        os.rmdir(self.mnt)
        os.rmdir(self.tmp)

    def fill(self, leave_bytes):
        """A ballast file that leaves about leave_bytes free."""
        st = os.statvfs(self.mnt)
        free = st.f_bavail * st.f_frsize
        path = os.path.join(self.mnt, "ballast")
        with open(path, "wb") as f:
            chunk = b"\0" * (1 << 20)
            left = max(0, free - leave_bytes)
            while left > 0:
                n = min(left, len(chunk))
                try:
                    f.write(chunk[:n])
                    f.flush()
                except OSError:
                    break
                left -= n
        return path

    def stored(self):
        """(batch -> number of samples) of what the server holds."""
        r = self.srv.get("/api/v1/export", {"match[]": "df"})
        self.assertEqual(r.status, 200, r)
        per_batch = {}
        for line in r.text.splitlines():
            if not line:
                continue
            for v in json.loads(line)["values"]:
                b = int(v) // 1000
                per_batch[b] = per_batch.get(b, 0) + 1
        return per_batch

    def check(self, acked, refused, when):
        got = self.stored()
        for b in acked:
            self.assertEqual(got.get(b, 0), SERIES * PER_BATCH,
                             "%s: acknowledged batch %d has %d samples" % (when, b, got.get(b, 0)))
        for b in refused:
            self.assertEqual(got.get(b, 0), 0,
                             "%s: refused batch %d has %d samples" % (when, b, got.get(b, 0)))

    def test_full_disk_refuses_then_resumes(self):
        data = os.path.join(self.mnt, "data")
        self.srv = tsdbtest.Server(data_dir=data).start()
        s = self.srv
        t0 = tsdbtest.now_ms() - 6 * 3600 * 1000
        acked, refused = [], []
        b = 0
        for _ in range(5):
            r = s.post("/api/v1/import", batch_body(b, t0))
            self.assertEqual(r.status, 204, r)
            acked.append(b)
            b += 1

        ballast = self.fill(leave_bytes=256 * 1024)
        first_503 = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b < 400 and len(refused) < 5:
            r = s.post("/api/v1/import", batch_body(b, t0))
            if r.status == 204:
                acked.append(b)
            else:
                self.assertEqual(r.status, 503, r)
                self.assertIn("retry-after", r.headers)
                refused.append(b)
                if first_503 is None:
                    first_503 = r
            b += 1  # a batch number is never sent twice
        self.assertIsNotNone(first_503, "the disk never filled up")
        r = s.get("/-/ready")
        self.assertEqual(r.status, 503, r)
        self.assertIn("writes are refused", r.text)
        m = s.get("/metrics").text
        self.assertRegex(m, r'tsdb_writes_refused\{reason="[^"]+"\} 1')
        self.assertEqual(s.get("/-/healthy").status, 200)
        # Reads go on while writes are refused.
        self.check(acked, refused, "while full")

        os.unlink(ballast)
        resumed = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = s.post("/api/v1/import", batch_body(b, t0))
            if r.status == 204:
                acked.append(b)
                resumed = True
                b += 1
                break
            self.assertEqual(r.status, 503, r)
            refused.append(b)
            b += 1
            time.sleep(0.5)
        self.assertTrue(resumed, "writes did not resume after space came back")
        for _ in range(5):
            r = s.post("/api/v1/import", batch_body(b, t0))
            self.assertEqual(r.status, 204, r)
            acked.append(b)
            b += 1
        deadline = time.monotonic() + 30
        while s.get("/-/ready").status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(s.get("/-/ready").status, 200)
        self.assertRegex(s.get("/metrics").text, r'tsdb_writes_refused\{reason="none"\} 0')
        self.check(acked, refused, "after space returned")

        self.assertEqual(s.stop(), 0)
        s.start()
        self.check(acked, refused, "after a clean restart")
        s.kill()
        s.start()
        self.check(acked, refused, "after kill -9")


if __name__ == "__main__":
    tsdbtest.main()
