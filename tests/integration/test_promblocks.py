#!/usr/bin/python3
"""Prometheus blocks in and out of tsdbctl, checked with the real Prometheus 2.42 and
promtool from Debian.

The data (2.5 days of counters at 15 s, gauges with every special value, a series
with a stale marker) goes into a real tsdbd, which is stopped; then:
  - `tsdbctl export --format prometheus` writes blocks that promtool lists, laid out as
    Prometheus' compactor would (2h blocks compacted into 6h and 18h ones, each inside
    its aligned range, none overlapping), with the thanos section in meta.json;
    `promtool tsdb dump` of them equals tsdbctl's JSON export sample for sample (plus the
    stale marker, which JSON leaves out);
  - Prometheus started on the exported directory answers range queries as tsdbd does on
    the original data;
  - `tsdbctl import --format prometheus` of those blocks into an empty directory gives
    back every sample bit for bit (remote read chunks of both stores compared, stale
    marker included); a second import stores nothing twice;
  - blocks made by `promtool tsdb create-blocks-from openmetrics`, and a snapshot a
    Prometheus took after deleting part of a series (tombstones), import as Prometheus
    shows them;
  - damaged blocks, a locked or foreign data directory, bad options and bad JSON lines
    get clear errors and exit codes; JSON lines import from a file and from stdin.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import promdiff  # noqa: E402
import tsdbtest  # noqa: E402
from tsdbtest import bits  # noqa: E402

TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")
PROMTOOL = "/usr/bin/promtool"
HOUR = 3600000
DAY = 24 * HOUR
T0 = (tsdbtest.now_ms() // DAY - 3) * DAY + 5 * HOUR  # 05:00 three days ago
STEP = 15000
N = 60 * 240  # 60 hours: ends before today, every partition closed
END = T0 + (N - 1) * STEP
NAN_BITS = 0x7FF8000000000001  # what /api/v1/import stores for null

CPU = [{"__name__": "cpu_seconds_total", "instance": "i%d" % i, "mode": m}
       for i in range(2) for m in ("user", "system")]
TEMP = [{"__name__": "temp_celsius", "instance": "i%d" % i, "zone": 'a "quoted" zone'}
        for i in range(2)]
STALE = {"__name__": "stale_series", "instance": "i0"}
STALE_AT = T0 + 300 * STEP

PROM_CONFIG = "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n"


def ctl(*args, stdin=None):
    p = subprocess.run([TSDBCTL] + list(args), input=stdin, capture_output=True, timeout=600)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def promtool(*args):
    p = subprocess.run([PROMTOOL] + list(args), capture_output=True, timeout=600)
    if p.returncode != 0:
        raise AssertionError("promtool %s: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout.decode()


def key(labels):
    return tuple(sorted(labels.items()))


def jval(v):
    """A value of tsdbctl's JSON export as a float."""
    return float("nan") if v is None else float(v)


def same_float(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def parse_labels(s):
    """promtool's {a="x", b="y \\"q\\""} -> dict (Go-quoted values)."""
    out, i = {}, 1
    while s[i] != "}":
        j = s.index("=", i)
        name = s[i:j].strip()
        k = j + 2
        val = []
        while s[k] != '"':
            if s[k] == "\\":
                k += 1
                val.append({"n": "\n", "t": "\t"}.get(s[k], s[k]))
            else:
                val.append(s[k])
            k += 1
        out[name] = "".join(val)
        i = k + 1
        if s[i] == ",":
            i += 1
        while s[i] == " ":
            i += 1
    return out, i + 1


def promtool_dump(path):
    """promtool tsdb dump -> {labels key: [(t, float)]} in time order."""
    out = {}
    for line in promtool("tsdb", "dump", path).splitlines():
        labels, end = parse_labels(line)
        v, t = line[end:].split()
        out.setdefault(key(labels), []).append((int(t), float(v)))
    for k in out:
        out[k].sort(key=lambda x: x[0])
    return out


def ctl_export(data_dir):
    """tsdbctl's JSON export -> {labels key: [(t, float)]} (stale markers left out)."""
    rc, out, err = ctl("export", "--data-dir", data_dir)
    assert rc == 0, err
    res = {}
    for line in out.splitlines():
        o = json.loads(line)
        res.setdefault(key(o["metric"]), []).extend(
            (t, jval(v)) for t, v in zip(o["timestamps"], o["values"]))
    for k in res:
        res[k].sort(key=lambda x: x[0])
    return res


def assert_same_samples(tc, a, b, what):
    tc.assertEqual(sorted(a), sorted(b), what + ": series differ")
    for k in a:
        tc.assertEqual(len(a[k]), len(b[k]), "%s: %s sample count" % (what, k))
        for (ta, va), (tb, vb) in zip(a[k], b[k]):
            tc.assertEqual(ta, tb, "%s: %s" % (what, k))
            tc.assertTrue(same_float(va, vb), "%s: %s at %d: %r != %r" % (what, k, ta, va, vb))


def read_bits(srv, names, start, end):
    """Every sample of the named metrics as {labels key: [(t, value bits)]}, through
    remote read's XOR chunks (bit-exact, stale markers included)."""
    out = {}
    for name in names:
        r = srv.remote_read([(start, end, [(0, "__name__", name)])], accepted=[1])
        assert r.status == 200, r
        for f in tsdbtest.parse_frames(r.body):
            for cs in f.chunked_series:
                k = key({l.name: l.value for l in cs.labels})
                for c in cs.chunks:
                    out.setdefault(k, []).extend(tsdbtest.xor_decode(c.data))
    return {k: sorted(set(v)) for k, v in out.items()}


class PromBlocksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="promblocks-")
        cls.src = os.path.join(cls.tmp, "src")
        s = tsdbtest.Server(data_dir=cls.src).start()
        try:
            lines = []
            for k, lab in enumerate(CPU):
                vals, v = [], 0.0
                for i in range(N):
                    v = 0.0 if i % 5000 == 4999 else round(v + 0.25 * (k + 1), 2)  # resets
                    vals.append(v)
                lines.append({"metric": lab, "values": vals,
                              "timestamps": [T0 + i * STEP for i in range(N)]})
            for k, lab in enumerate(TEMP):
                ts = [T0 + i * 60000 for i in range(N // 4)]
                vals = []
                for i in range(len(ts)):
                    r = i % 50
                    vals.append(None if r == 7 else "Inf" if r == 13 else "-Inf" if r == 14
                                else 5e-324 if r == 21 else -0.0 if r == 23
                                else math.sin(i / 10.0) * 40 - 10 * k)
                lines.append({"metric": lab, "values": vals, "timestamps": ts})
            s.import_jsonl(lines)
            stale = [(T0 + i * STEP, float(i)) for i in range(300)]
            stale.append((STALE_AT, ("bits", tsdbtest.STALE_NAN_BITS)))
            stale += [(T0 + (301 + i) * STEP, float(i)) for i in range(10)]
            r = s.remote_write([(STALE, stale)])
            assert r.status == 204, r
        finally:
            s.stop()
        cls.expected = ctl_export(cls.src)
        cls.out = os.path.join(cls.tmp, "blocks")
        rc, _, err = ctl("export", "--data-dir", cls.src, "--format", "prometheus", "--out",
                         cls.out, "--external-label", "cluster=eu", "--external-label",
                         "replica=0")
        assert rc == 0, err
        cls.export_err = err

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def blocks(self, d):
        out = []
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name, "meta.json")
            if os.path.exists(p):
                with open(p) as f:
                    out.append(json.load(f))
        return sorted(out, key=lambda m: m["minTime"])

    def test_export_layout_and_meta(self):
        self.assertIn("Prometheus blocks", self.export_err)
        metas = self.blocks(self.out)
        listed = promtool("tsdb", "list", self.out)
        for m in metas:
            self.assertIn(m["ulid"], listed)
            self.assertEqual(m["version"], 1)
            self.assertEqual(m["thanos"]["labels"], {"cluster": "eu", "replica": "0"})
            self.assertEqual(m["thanos"]["downsample"]["resolution"], 0)
            # inside the aligned range of its compaction level: 2h, 6h, 18h
            rng = 2 * HOUR * 3 ** (m["compaction"]["level"] - 1)
            self.assertLessEqual(m["compaction"]["level"], 3)
            self.assertEqual(m["minTime"] // rng, (m["maxTime"] - 1) // rng, m)
            for f in ("index", "tombstones", "chunks/000001"):
                self.assertTrue(os.path.exists(os.path.join(self.out, m["ulid"], f)), f)
        for a, b in zip(metas, metas[1:]):
            self.assertLessEqual(a["maxTime"], b["minTime"], "blocks overlap")
        levels = [m["compaction"]["level"] for m in metas]
        self.assertIn(3, levels)  # compacted: 18h blocks for the old data
        self.assertEqual(levels[-1], 1)  # the newest stays a 2h block
        self.assertEqual(metas[0]["minTime"], T0)
        self.assertEqual(metas[-1]["maxTime"], END + 1)
        n = sum(m["stats"]["numSamples"] for m in metas)
        self.assertEqual(n, sum(len(v) for v in self.expected.values()) + 1)  # + stale

    def test_promtool_dump_equals_export(self):
        dump = promtool_dump(self.out)
        stale = dump[key(STALE)]
        self.assertIn(STALE_AT, [t for t, v in stale if math.isnan(v)])
        dump[key(STALE)] = [(t, v) for t, v in stale if t != STALE_AT]
        assert_same_samples(self, dump, self.expected, "promtool dump vs tsdbctl export")

    def test_prometheus_on_blocks_answers_like_tsdbd(self):
        prom_dir = os.path.join(self.tmp, "prom-data")
        shutil.copytree(self.out, prom_dir)
        srv_dir = os.path.join(self.tmp, "srv-copy")
        shutil.copytree(self.src, srv_dir)
        prom = peers.Prometheus(PROM_CONFIG, data_dir=prom_dir,
                                args=["--storage.tsdb.retention.time=10y"])
        srv = tsdbtest.Server(data_dir=srv_dir)
        try:
            prom.start()
            srv.start()
            qs = ["sum by (mode) (rate(cpu_seconds_total[5m]))",
                  "increase(cpu_seconds_total{instance=\"i1\"}[1h])",
                  "avg_over_time(temp_celsius[1h])",
                  "max_over_time(temp_celsius[30m])",
                  "count(cpu_seconds_total)",
                  "stale_series",
                  "cpu_seconds_total{mode=\"user\"}"]
            for q in qs:
                for step in ("900", "3600"):
                    params = {"query": q, "start": "%.3f" % (T0 / 1000),
                              "end": "%.3f" % (END / 1000 + 600), "step": step}
                    want = prom.api("/api/v1/query_range", **params)
                    r = srv.get("/api/v1/query_range",
                                dict(params, max_source_resolution="raw"))
                    self.assertEqual(r.status, 200, r)
                    env = {"status": "success", "data": want}
                    diff = promdiff.compare(env, r.json(), q)
                    self.assertIsNone(diff, "%s step %s: %s" % (q, step, diff))
                    self.assertTrue(want["result"], q)
        finally:
            prom.cleanup()
            srv.cleanup()

    def test_import_round_trip_bit_exact(self):
        dst = os.path.join(self.tmp, "imported")
        rc, _, err = ctl("import", "--format", "prometheus", "--from", self.out,
                         "--data-dir", dst)
        self.assertEqual(rc, 0, err)
        self.assertIn("importing %d Prometheus blocks" % len(self.blocks(self.out)), err)
        self.assertIn("0 rejected", err)
        assert_same_samples(self, ctl_export(dst), self.expected, "import vs original")
        # a second run stores nothing twice
        rc, _, err = ctl("import", "--format", "prometheus", "--from", self.out,
                         "--data-dir", dst)
        self.assertEqual(rc, 0, err)
        self.assertIn(" 0 stored (0 new series)", err)
        # bit for bit, the stale marker too, through remote read
        names = ["cpu_seconds_total", "temp_celsius", "stale_series"]
        a_dir = os.path.join(self.tmp, "bits-src")
        shutil.copytree(self.src, a_dir)
        a, b = tsdbtest.Server(data_dir=a_dir), tsdbtest.Server(data_dir=dst)
        try:
            a.start()
            b.start()
            want = read_bits(a, names, T0, END)
            got = read_bits(b, names, T0, END)
            self.assertEqual(sorted(want), sorted(got))
            for k in want:
                self.assertEqual(want[k], got[k], k)
            self.assertIn((STALE_AT, tsdbtest.STALE_NAN_BITS), got[key(STALE)])
            self.assertEqual(len(got[key(CPU[0])]), N)
            # while a server holds the directory, import refuses
            rc, _, err = ctl("import", "--format", "prometheus", "--from", self.out,
                             "--data-dir", dst)
            self.assertEqual(rc, 3, err)
            self.assertIn("locked", err)
            rc, _, err = ctl("export", "--data-dir", dst, "--format", "prometheus", "--out",
                             os.path.join(self.tmp, "never"))
            self.assertEqual(rc, 3, err)
        finally:
            a.cleanup()
            b.stop()

    def test_import_promtool_blocks(self):
        base = 1700000000  # 2023-11-14: three 2h blocks
        lines = ["# HELP http_requests_total Requests.", "# TYPE http_requests_total counter"]
        want = {}
        for code in ("200", "500"):
            lab = {"__name__": "http_requests_total", "code": code, "path": "/a b"}
            for i in range(0, 5 * 3600, 30):
                v = float(i // 30 * (2 if code == "500" else 1))
                lines.append('http_requests_total{code="%s",path="/a b"} %r %d' % (code, v, base + i))
                want.setdefault(key(lab), []).append(((base + i) * 1000, v))
        lines.append("# TYPE gauge_special gauge")
        specials = [("NaN", float("nan")), ("+Inf", float("inf")), ("-Inf", float("-inf")),
                    ("1e-300", 1e-300), ("-0.5", -0.5)]
        for i, (txt, v) in enumerate(specials):
            lines.append("gauge_special %s %d" % (txt, base + 60 * i))
            want.setdefault(key({"__name__": "gauge_special"}), []).append(((base + 60 * i) * 1000, v))
        lines.append("# EOF")
        om = os.path.join(self.tmp, "in.om")
        with open(om, "w") as f:
            f.write("\n".join(lines) + "\n")
        blocks = os.path.join(self.tmp, "promtool-blocks")
        promtool("tsdb", "create-blocks-from", "openmetrics", om, blocks)
        self.assertGreaterEqual(len(self.blocks(blocks)), 3)
        dst = os.path.join(self.tmp, "from-promtool")
        rc, _, err = ctl("import", "--format", "prometheus", "--from", blocks, "--data-dir", dst)
        self.assertEqual(rc, 0, err)
        got = ctl_export(dst)
        assert_same_samples(self, got, want, "promtool blocks")
        # one block given as the directory
        one = os.path.join(blocks, self.blocks(blocks)[0]["ulid"])
        dst2 = os.path.join(self.tmp, "one-block")
        rc, _, err = ctl("import", "--format", "prometheus", "--from", one, "--data-dir", dst2)
        self.assertEqual(rc, 0, err)
        self.assertIn("importing 1 Prometheus blocks", err)

    def test_import_prometheus_snapshot_with_tombstones(self):
        prom_dir = os.path.join(self.tmp, "prom-snap")
        shutil.copytree(self.out, prom_dir)
        prom = peers.Prometheus(PROM_CONFIG, data_dir=prom_dir,
                                args=["--storage.tsdb.retention.time=10y",
                                      "--web.enable-admin-api"])
        d0, d1 = T0 + 10 * HOUR, T0 + 20 * HOUR
        try:
            prom.start()
            r = prom.post("/api/v1/admin/tsdb/delete_series?match[]=%s&start=%d&end=%d" % (
                "cpu_seconds_total%7Bmode%3D%22user%22%7D", d0 // 1000, d1 // 1000))
            self.assertEqual(r.status, 204, r)
            r = prom.post("/api/v1/admin/tsdb/snapshot")
            self.assertEqual(r.status, 200, r)
            snap = os.path.join(prom_dir, "snapshots", r.json()["data"]["name"])
        finally:
            prom.stop()
        stones = [m for m in os.listdir(snap)
                  if os.path.getsize(os.path.join(snap, m, "tombstones")) > 9]
        self.assertTrue(stones, "Prometheus wrote no tombstones")
        dst = os.path.join(self.tmp, "from-snapshot")
        rc, _, err = ctl("import", "--format", "prometheus", "--from", snap, "--data-dir", dst)
        self.assertEqual(rc, 0, err)
        self.assertIn("deleted in the blocks (tombstones) left out", err)
        want = {}
        for k, v in self.expected.items():
            if dict(k).get("mode") == "user":
                v = [(t, x) for t, x in v if not d0 <= t <= d1]
            want[k] = v
        assert_same_samples(self, ctl_export(dst), want, "snapshot with tombstones")

    def test_errors(self):
        good = os.path.join(self.tmp, "err-blocks")
        shutil.copytree(self.out, good)
        first = self.blocks(good)[0]["ulid"]
        # a damaged series entry in the index
        idx = os.path.join(good, first, "index")
        with open(idx, "r+b") as f:
            f.seek(5 + 4096 if os.path.getsize(idx) > 8192 else os.path.getsize(idx) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x40]))
        rc, _, err = ctl("import", "--format", "prometheus", "--from", good, "--data-dir",
                         os.path.join(self.tmp, "err-dst"))
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, "block .*%s.*(checksum|damaged|truncated|symbol)" % first)
        # a truncated chunk file
        shutil.rmtree(good)
        shutil.copytree(self.out, good)
        seg = os.path.join(good, first, "chunks", "000001")
        os.truncate(seg, os.path.getsize(seg) // 2)
        rc, _, err = ctl("import", "--format", "prometheus", "--from", good, "--data-dir",
                         os.path.join(self.tmp, "err-dst2"))
        self.assertEqual(rc, 1, err)
        self.assertIn("runs past its segment file", err)
        # not blocks, not a database, bad options
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty, exist_ok=True)
        rc, _, err = ctl("import", "--format", "prometheus", "--from", empty, "--data-dir",
                         os.path.join(self.tmp, "err-dst3"))
        self.assertEqual(rc, 1, err)
        self.assertIn("holds no Prometheus block", err)
        foreign = os.path.join(self.tmp, "foreign")
        os.makedirs(foreign, exist_ok=True)
        with open(os.path.join(foreign, "x"), "w") as f:
            f.write("x")
        rc, _, err = ctl("import", "--format", "prometheus", "--from", self.out, "--data-dir",
                         foreign)
        self.assertEqual(rc, 4, err)
        self.assertEqual(ctl("import", "--format", "csv", "--data-dir", foreign)[0], 2)
        self.assertEqual(ctl("import", "--format", "prometheus", "--data-dir", foreign)[0], 2)
        self.assertEqual(ctl("export", "--data-dir", self.src, "--format", "prometheus")[0], 2)
        self.assertEqual(ctl("export", "--data-dir", self.src, "--format", "x", "--out",
                             empty)[0], 2)
        rc, _, err = ctl("export", "--data-dir", self.src, "--format", "prometheus", "--out",
                         empty, "--min-block-duration", "2h", "--max-block-duration", "1h")
        self.assertEqual(rc, 2, err)
        rc, _, err = ctl("export", "--data-dir", self.src, "--format", "prometheus", "--out",
                         self.out)
        self.assertEqual(rc, 1, err)
        self.assertIn("not empty", err)

    def test_jsonl_import(self):
        dst = os.path.join(self.tmp, "jsonl")
        good = [{"metric": {"__name__": "m", "k": "v%d" % i}, "values": [1, 2.5, None],
                 "timestamps": [T0, T0 + 1000, T0 + 2000]} for i in range(2)]
        body = "\n".join([json.dumps(good[0]), '{"metric": nope}', json.dumps(good[1])]) + "\n"
        rc, _, err = ctl("import", "--data-dir", dst, stdin=body.encode())
        self.assertEqual(rc, 1, err)
        self.assertIn("line 2", err)
        self.assertIn("standard input", err)
        got = ctl_export(dst)
        self.assertEqual(len(got), 2)
        self.assertEqual(got[key(good[1]["metric"])][1], (T0 + 1000, 2.5))
        path = os.path.join(self.tmp, "in.jsonl")
        with open(path, "w") as f:
            f.write(json.dumps({"metric": {"__name__": "m2"}, "values": [7],
                                "timestamps": [T0]}) + "\n")
        rc, _, err = ctl("import", "--format", "jsonl", "--from", path, "--data-dir", dst)
        self.assertEqual(rc, 0, err)
        self.assertEqual(ctl_export(dst)[key({"__name__": "m2"})], [(T0, 7.0)])
        rc, _, err = ctl("import", "--from", os.path.join(self.tmp, "absent.jsonl"),
                         "--data-dir", dst)
        self.assertEqual(rc, 1, err)
        # a series the engine refuses whole (70 labels, over --max-labels' 64) is a
        # rejection, not a silent skip
        wide = {"__name__": "wide"}
        wide.update({"l%d" % i: "v" for i in range(70)})
        rc, _, err = ctl("import", "--data-dir", dst, stdin=(json.dumps(
            {"metric": wide, "values": [1, 2], "timestamps": [T0, T0 + 1000]}) + "\n").encode())
        self.assertEqual(rc, 1, err)
        self.assertIn("2 rejected", err)
        self.assertIn("too many labels", err)


if __name__ == "__main__":
    peers.run_main()
