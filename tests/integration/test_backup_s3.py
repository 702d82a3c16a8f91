#!/usr/bin/python3
"""Integration tests of `tsdbctl backup` / `restore` / `backup list|prune` against an
S3-compatible server (s3rver from npm, tests/s3, installed by scripts/deps.sh) on
loopback: s3://bucket/prefix with --s3-endpoint and the AWS environment variables;
incremental objects, restore equal to the data at backup time, prune, and clear errors
for missing credentials and an unreachable endpoint.
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402

SRC = os.environ.get("TS_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
S3RVER = os.path.join(SRC, "tests", "s3", "node_modules", ".bin", "s3rver")
TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")
NOW = tsdbtest.now_ms()
DAY = 86400000
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER",
           AWS_REGION="us-east-1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ctl(*args, env=ENV):
    p = subprocess.run([TSDBCTL] + list(args), capture_output=True, text=True, timeout=600,
                       env=env)
    return p.returncode, p.stdout, p.stderr


class BackupS3Test(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(S3RVER, os.X_OK), "s3rver missing: run scripts/deps.sh test")
        self.srv = tsdbtest.Server(["--web.enable-admin-api"])
        self.srv.start()
        self.port = free_port()
        self.s3dir = os.path.join(self.srv.tmp, "s3")
        self.s3log = open(os.path.join(self.srv.tmp, "s3rver.log"), "wb")
        self.s3 = subprocess.Popen([S3RVER, "--directory", self.s3dir, "--address", "127.0.0.1",
                                    "--port", str(self.port), "--configure-bucket", "tsdb"],
                                   stdout=self.s3log, stderr=subprocess.STDOUT)
        self.endpoint = "http://127.0.0.1:%d" % self.port
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        self.others = []

    def tearDown(self):
        for o in self.others:
            o.cleanup()
        self.s3.terminate()
        self.s3.wait(timeout=10)
        self.s3log.close()
        self.srv.cleanup()

    def test_backup_restore_prune(self):
        n = 5 * 1440
        self.srv.import_jsonl([tsdbtest.jsonl_line({"__name__": "m", "k": str(k)},
                                                   [(NOW - 5 * DAY + i * 60000, float(i % 97 + k))
                                                    for i in range(n)]) for k in range(4)])
        server = "127.0.0.1:%d" % self.srv.port
        dest = "s3://tsdb/team-a/tsdb"
        want1 = tsdbtest.export_all(self.srv)
        rc, out, err = ctl("backup", "--data-dir", self.srv.data_dir, "--to", dest,
                           "--s3-endpoint", self.endpoint, "--server", server)
        self.assertEqual(rc, 0, out + err)
        self.srv.import_jsonl([tsdbtest.jsonl_line({"__name__": "m", "k": "0"}, [(NOW, 1.0)])])
        want2 = tsdbtest.export_all(self.srv)
        rc, out2, err = ctl("backup", "--data-dir", self.srv.data_dir, "--to", dest,
                            "--s3-endpoint", self.endpoint, "--server", server)
        self.assertEqual(rc, 0, out2 + err)
        self.assertRegex(out2, r" [1-9]\d* objects already in ")
        rc, out, err = ctl("backup", "list", "--to", dest, "--s3-endpoint", self.endpoint)
        self.assertEqual(rc, 0, out + err)
        names = [l.split()[0] for l in out.splitlines()]
        self.assertEqual(len(names), 2, out)
        for name, want in ((names[0], want1), (None, want2)):
            d = os.path.join(self.srv.tmp, "restored-%s" % (name or "latest"))
            args = ["restore", "--from", dest, "--s3-endpoint", self.endpoint, "--data-dir", d]
            rc, out, err = ctl(*(args + (["--name", name] if name else [])))
            self.assertEqual(rc, 0, out + err)
            rc, out, err = ctl("verify", "--data-dir", d)
            self.assertEqual(rc, 0, out + err)
            o = tsdbtest.Server([], data_dir=d)
            self.others.append(o)
            o.start()
            self.assertEqual(tsdbtest.export_all(o), want)
        rc, out, err = ctl("backup", "prune", "--to", dest, "--s3-endpoint", self.endpoint,
                           "--keep", "1")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("1 backups removed, 1 kept", out)
        rc, out, err = ctl("backup", "list", "--to", dest, "--s3-endpoint", self.endpoint)
        self.assertEqual(len(out.splitlines()), 1, out)

    def test_errors(self):
        env = {k: v for k, v in ENV.items() if not k.startswith("AWS_")}
        rc, out, err = ctl("backup", "list", "--to", "s3://tsdb/x", "--s3-endpoint",
                           self.endpoint, env=env)
        self.assertEqual(rc, 2)
        self.assertIn("AWS_ACCESS_KEY_ID", err)
        rc, out, err = ctl("backup", "list", "--to", "s3://tsdb/x", "--s3-endpoint",
                           "http://127.0.0.1:%d" % free_port())
        self.assertEqual(rc, 1)
        self.assertIn("S3 GET", err)
        rc, out, err = ctl("restore", "--from", "s3://tsdb/empty", "--s3-endpoint", self.endpoint,
                           "--data-dir", os.path.join(self.srv.tmp, "r"))
        self.assertEqual(rc, 1)
        self.assertIn("no backup", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
