#!/usr/bin/python3
"""cmake --install and libtsdb as users get it: the install tree has the programs, the
shared and static library, headers under include/tsdb/ and tsdb.pc; each public header
compiles on its own; the examples/ programs build against the install tree through
pkg-config (shared and static) and run against a fresh data directory; the library
writes nothing to stderr until a log sink is set.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import tsdbtest  # noqa: E402

CC = shutil.which("cc") or "/usr/bin/gcc"


def run(cmd, env=None, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                       timeout=300, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tsdb-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        run(["cmake", "--install", tsdbtest.BUILD, "--prefix", cls.prefix])
        pcs = []
        for root, _, files in os.walk(cls.prefix):
            pcs += [os.path.join(root, f) for f in files if f == "tsdb.pc"]
        assert len(pcs) == 1, pcs
        cls.pcdir = os.path.dirname(pcs[0])
        cls.libdir = os.path.dirname(cls.pcdir)
        cls.env = dict(os.environ, PKG_CONFIG_PATH=cls.pcdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def pkg(self, *args):
        return run(["pkg-config"] + list(args) + ["tsdb"], env=self.env).stdout.split()

    def test_tree(self):
        for f in ("bin/tsdbd", "bin/tsdbctl", "include/tsdb/tsdb.h", "include/tsdb/query.h",
                  "include/tsdb/types.h", "include/tsdb/storage/err.h",
                  "include/tsdb/storage/log.h", "include/tsdb/storage/wal_types.h"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, f)), f)
        libs = os.listdir(self.libdir)
        self.assertIn("libtsdb.a", libs)
        self.assertTrue(any(x.startswith("libtsdb.so") for x in libs), libs)
        self.assertEqual(self.pkg("--modversion"), ["0.1.0"])
        out = run([os.path.join(self.prefix, "bin/tsdbd"), "--help"]).stdout
        self.assertIn("--data-dir", out)
        out = run([os.path.join(self.prefix, "bin/tsdbctl"), "--help"]).stdout
        self.assertIn("inspect", out)

    def test_headers_compile_alone(self):
        for h in ("tsdb/tsdb.h", "tsdb/query.h", "tsdb/types.h", "tsdb/storage/err.h",
                  "tsdb/storage/log.h", "tsdb/storage/wal_types.h"):
            run([CC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c", "-"]
                + self.pkg("--cflags"), input="#include <%s>\n" % h)

    def build_example(self, name, static=False):
        src = os.path.join(tsdbtest.SRCDIR, "examples", name + ".c")
        exe = os.path.join(self.tmp, name + ("-static" if static else ""))
        if static:
            libs = [os.path.join(self.libdir, "libtsdb.a") if x == "-ltsdb" else x
                    for x in self.pkg("--static", "--libs")]
        else:
            libs = self.pkg("--libs")
        run([CC, "-std=c11", "-Wall", "-Wextra", "-Werror", src, "-o", exe] + self.pkg("--cflags") + libs)
        return exe

    def test_examples_build_and_run(self):
        for static in (False, True):
            data = tempfile.mkdtemp(dir=self.tmp)
            env = dict(os.environ, LD_LIBRARY_PATH=self.libdir)
            out = run([self.build_example("append_select", static), data], env=env).stdout
            self.assertIn("appended 80 samples", out)
            self.assertIn('code="200",job="api"}: 40 samples', out)
            self.assertIn('code="500",job="api"}: 40 samples', out)
            out = run([self.build_example("promql", static), data], env=env).stdout
            self.assertIn("range sum by (code) (rate(http_requests_total[5m])): 2 series", out)
            self.assertIn("instant: 2 series", out)
            # A bad query is reported in Prometheus' words, exit 1.
            p = subprocess.run([self.build_example("promql", static), data, "sum("], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("parse error", p.stderr)

    def test_library_is_silent_until_asked(self):
        src = os.path.join(self.tmp, "silent.c")
        with open(src, "w") as f:
            f.write('#include <tsdb/tsdb.h>\n'
                    'int main(void) {\n'
                    '  ts_log(TS_LOG_ERROR, "before any sink");\n'
                    '  ts_log_to_stderr();\n'
                    '  ts_log(TS_LOG_ERROR, "after ts_log_to_stderr");\n'
                    '  return 0;\n}\n')
        exe = os.path.join(self.tmp, "silent")
        run([CC, "-std=c11", src, "-o", exe] + self.pkg("--cflags") + self.pkg("--libs"))
        p = run([exe], env=dict(os.environ, LD_LIBRARY_PATH=self.libdir))
        self.assertNotIn("before any sink", p.stderr)
        self.assertIn("after ts_log_to_stderr", p.stderr)


if __name__ == "__main__":
    peers.run_main()
