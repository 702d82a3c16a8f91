#!/usr/bin/python3
"""Integration tests of tsdbctl (inspect, verify, export, compact) on a data directory
written by a real tsdbd: data goes in through /api/v1/import (JSON lines) and remote
write (a stale marker and metadata); inspect and verify run while the server runs (hot
XOR chunks, index format 2 with group rows), and a consistent copy of that state is
taken with mdb_copy; the clean stop converts every partition to cold blocks, which
inspect shows and verify checks; then export and compact (which builds the downsampled
tiers), and a deletion (a tombstone) in a copy, whose tier blocks and tombstones verify
checks. Then records are corrupted in copies of the data directory with LMDB's own
mdb_dump/mdb_load (lmdb-utils): a chunk record, a cold block, a tier block, the "gens"
row, a postings entry, series and group rows; verify must name each problem and exit 1,
and leftover blocks of an unlisted generation must be a note, not a problem. The golden format-1 directory (tests/data/golden/db-v1) must
verify clean.

The remote-write body is built by hand (protobuf wire format, snappy literal-only
block) so the test needs no python3-protobuf or python3-snappy; group rows are built
by hand too, as zstd frames of raw (stored) blocks, so it needs no zstd module.
"""
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402
from tsdbtest import bits, f64  # noqa: E402

TSDBCTL = os.path.join(tsdbtest.BUILD, "tsdbctl")
DAY = 86400000
T0 = (tsdbtest.now_ms() // DAY - 4) * DAY  # midnight four days ago: closed partitions
STEP = 60000
N = 3600  # 60 hours a series: three partitions of one day
NAN_BITS = 0x7FF8000000000001  # what /api/v1/import stores for null

CPU = [{"__name__": "cpu_seconds_total", "instance": "i%d" % i, "mode": m}
       for i in range(4) for m in ("user", "system")]
TEMP = [{"__name__": "temp_celsius", "instance": "i%d" % i} for i in range(2)]
STALE = {"__name__": "stale_series", "instance": "i0"}
N_SERIES = len(CPU) + len(TEMP) + 1


def cpu_samples(k):
    return [(T0 + i * STEP, round(i * 0.01 * (k + 1), 2)) for i in range(N)]


def temp_values(k):
    """Values with every special: null (NaN), +-Inf, tiny, huge, negative, -0.0."""
    out = []
    for i in range(N):
        r = i % 50
        if r == 7:
            out.append(None)
        elif r == 13:
            out.append("Inf")
        elif r == 14:
            out.append("-Inf")
        elif r == 21:
            out.append(5e-324)
        elif r == 22:
            out.append(1.7976931348623157e308)
        elif r == 23:
            out.append(-0.0)
        else:
            out.append(math.sin(i / 10.0) * 40 - 10 * k + 1e-9 * i)
    return out


def as_bits(v):
    """A JSON value of import/export -> IEEE-754 bits (NaN normalised to NAN_BITS)."""
    if v is None or v in ("NaN", "nan"):
        return NAN_BITS
    if v in ("Inf", "Infinity", "+Inf"):
        return bits(float("inf"))
    if v in ("-Inf", "-Infinity"):
        return bits(float("-inf"))
    b = bits(float(v))
    return NAN_BITS if math.isnan(f64(b)) else b


# ---- remote write without protobuf/snappy modules

def _uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num, wire, payload):
    key = _uvarint(num << 3 | wire)
    if wire == 2:
        return key + _uvarint(len(payload)) + payload
    return key + payload


def _snappy_literal(data):
    out = bytearray(_uvarint(len(data)))
    for off in range(0, len(data), 65536):
        piece = data[off:off + 65536]
        n = len(piece) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += piece
    return bytes(out)


def remote_write_body(series, metadata):
    """series: [(labels, [(t, value_bits)])]; metadata: [(family, type, help, unit)]."""
    wr = b""
    for labels, samples in series:
        ts = b""
        for k in sorted(labels):
            ts += _field(1, 2, _field(1, 2, k.encode()) + _field(2, 2, labels[k].encode()))
        for t, vb in samples:
            ts += _field(2, 2, _field(1, 1, struct.pack("<Q", vb)) + _field(2, 0, _uvarint(t)))
        wr += _field(1, 2, ts)
    for fam, typ, help_, unit in metadata:
        wr += _field(3, 2, _field(1, 0, _uvarint(typ)) + _field(2, 2, fam.encode()) +
                     _field(4, 2, help_.encode()) + _field(5, 2, unit.encode()))
    return _snappy_literal(wr)


def ctl(*args, timeout=60):
    p = subprocess.run([TSDBCTL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def ctl_tty(*args, timeout=60):
    """ctl with stderr on a terminal (a pty), where the long commands show progress."""
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([TSDBCTL] + list(args), stdout=subprocess.PIPE, stderr=slave,
                         stdin=subprocess.DEVNULL)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read()
    p.wait(timeout=timeout)
    p.stdout.close()
    os.close(master)
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def parse_export(text):
    """JSON lines -> {sorted label tuple: [(t, bits)]} (lines of one series joined)."""
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        # json.loads reads "-0" as the int 0: keep negative zero a float
        o = json.loads(line, parse_int=lambda t: -0.0 if t == "-0" else int(t))
        key = tuple(sorted(o["metric"].items()))
        self_ts = o["timestamps"]
        assert len(self_ts) == len(o["values"]), line[:200]
        out.setdefault(key, []).extend(zip(self_ts, [as_bits(v) for v in o["values"]]))
    return out


def mdb_roundtrip(env_dir, edit):
    """mdb_dump -a env_dir, edit(lines) -> lines, mdb_load into a fresh env that replaces
    env_dir's files."""
    dump = subprocess.run(["mdb_dump", "-a", env_dir], stdout=subprocess.PIPE, check=True,
                          timeout=30).stdout.decode().split("\n")
    dump = edit(dump)
    fresh = env_dir.rstrip("/") + ".load"
    os.mkdir(fresh)
    # (mdb_load warns about the db_pagesize/duplicates keywords it does not know)
    subprocess.run(["mdb_load", fresh], input="\n".join(dump).encode(), check=True,
                   stderr=subprocess.DEVNULL, timeout=30)
    for f in ("data.mdb", "lock.mdb"):
        if os.path.exists(os.path.join(env_dir, f)):
            os.unlink(os.path.join(env_dir, f))
    os.rename(os.path.join(fresh, "data.mdb"), os.path.join(env_dir, "data.mdb"))
    shutil.rmtree(fresh)


def zstd_raw_frame(data):
    """One zstd frame holding data in raw (stored) blocks, with its content size: what
    ts_zframe_unpack reads, without a compressor."""
    out = bytearray(struct.pack("<IB", 0xFD2FB528, 0xE0))  # single segment, 8-byte size
    out += struct.pack("<Q", len(data))
    pos = 0
    while True:
        piece = data[pos:pos + 131072]
        pos += len(piece)
        last = pos >= len(data)
        out += struct.pack("<I", len(piece) << 3 | int(last))[:3]  # raw block
        out += piece
        if last:
            return bytes(out)


def pack_labels(labels):
    """labels.h's packed form of [(name, value)] as given (not sorted here)."""
    out = _uvarint(len(labels))
    for n, v in labels:
        out += _uvarint(len(n)) + n.encode() + _uvarint(len(v)) + v.encode()
    return out


def group_row(entries, version=1):
    """A group row (format.h): version byte, zstd frame of (slot, u32 length, entry)."""
    raw = b"".join(struct.pack("<BI", slot, len(e)) + e for slot, e in entries)
    return bytes([version]) + zstd_raw_frame(raw)


def block_ids(b):
    """The series ids of a postings delta block (storage/env.h): u64 BE first id, then
    LEB128 deltas."""
    ids, pos = [struct.unpack(">Q", b[:8])[0]], 8
    while pos < len(b):
        d = shift = 0
        while True:
            c = b[pos]
            pos += 1
            d |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                break
        ids.append(ids[-1] + d)
    return ids


def id_block(ids):
    """One delta block of ascending ids (short enough for one block)."""
    out = bytearray(struct.pack(">Q", ids[0]))
    for a, b in zip(ids, ids[1:]):
        d = b - a
        while d >= 0x80:
            out.append(d & 0x7F | 0x80)
            d >>= 7
        out.append(d)
    return bytes(out)


def dump_rows(dump, name):
    """{key bytes: value bytes} of database `name` (the last value of a repeated key)."""
    first, end = section(dump, name)
    return {bytes.fromhex(dump[i].strip()): bytes.fromhex(dump[i + 1].strip())
            for i in range(first, end, 2)}


def dump_put(dump, name, key, value):
    """Adds (or, with mdb_load's put, replaces) one row of database `name` in a dump."""
    first, end = section(dump, name)
    dump[end:end] = [" " + key.hex(), " " + value.hex()]
    return dump


def dump_del(dump, name, key):
    first, end = section(dump, name)
    for i in range(first, end, 2):
        if dump[i].strip() == key.hex():
            del dump[i:i + 2]
            return dump
    raise AssertionError("key %s not in %s" % (key.hex(), name))


def mdb_snapshot(src, dst):
    """A consistent copy of each LMDB env of data directory src (partitions first, then
    the index, so every chunk's series is in the copied index) with mdb_copy, which
    reads a snapshot beside a running writer."""
    os.makedirs(os.path.join(dst, "raw"))
    for part in sorted(os.listdir(os.path.join(src, "raw"))):
        os.mkdir(os.path.join(dst, "raw", part))
        subprocess.run(["mdb_copy", os.path.join(src, "raw", part),
                        os.path.join(dst, "raw", part)], check=True, timeout=30)
    os.mkdir(os.path.join(dst, "index.mdb"))
    subprocess.run(["mdb_copy", os.path.join(src, "index.mdb"),
                    os.path.join(dst, "index.mdb")], check=True, timeout=30)


def problems(out):
    return [l for l in out.splitlines() if l.startswith("PROBLEM")]


def section(dump, name):
    """Index range [first, end) of the data lines of database `name` in a dump."""
    i = dump.index("database=" + name)
    while dump[i] != "HEADER=END":
        i += 1
    j = i + 1
    while dump[j] != "DATA=END":
        j += 1
    return i + 1, j


class TsdbctlTest(unittest.TestCase):
    srv = None
    expected = {}
    export_text = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tsdbctl-")
        cls.srv = tsdbtest.Server().start()
        s = cls.srv
        lines, exp = [], {}
        for k, lab in enumerate(CPU):
            smp = cpu_samples(k)
            lines.append(tsdbtest.jsonl_line(lab, smp))
            exp[tuple(sorted(lab.items()))] = [(t, as_bits(v)) for t, v in smp]
        for k, lab in enumerate(TEMP):
            vals = temp_values(k)
            ts = [T0 + i * STEP for i in range(N)]
            lines.append(json.dumps({"metric": lab, "values": vals, "timestamps": ts}))
            exp[tuple(sorted(lab.items()))] = [(t, as_bits(v)) for t, v in zip(ts, vals)]
        s.import_jsonl(lines)
        stale = [(T0 + i * STEP, bits(float(i))) for i in range(300)]
        stale.append((T0 + 300 * STEP, tsdbtest.STALE_NAN_BITS))
        stale += [(T0 + (301 + i) * STEP, bits(float(i))) for i in range(10)]
        r = s.post("/api/v1/write", remote_write_body(
            [(STALE, stale)], [("cpu_seconds_total", 1, "CPU time.", "seconds")]),
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
             "X-Prometheus-Remote-Write-Version": "0.1.0"})
        assert r.status == 204, r
        exp[tuple(sorted(STALE.items()))] = [x for x in stale if x[1] != tsdbtest.STALE_NAN_BITS]
        cls.expected = exp
        # new series and sealed chunks reach LMDB within the flush interval (1 s)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rc, out, err = ctl("inspect", "--data-dir", s.data_dir, "--json")
            if rc == 0:
                j = json.loads(out)
                if j["series"] == N_SERIES and j["totals"]["chunks"] > 0:
                    break
            time.sleep(0.3)
        # the hot state (chunks not yet converted), for the chunk corruption test
        cls.hot = os.path.join(cls.tmp, "hot")
        mdb_snapshot(s.data_dir, cls.hot)

    @classmethod
    def tearDownClass(cls):
        if cls.srv:
            cls.srv.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @property
    def data(self):
        return self.srv.data_dir

    def copy_data(self, name):
        dst = os.path.join(self.tmp, name)
        shutil.copytree(self.data, dst, ignore=shutil.ignore_patterns("LOCK"))
        return dst

    # -- while the server runs (tests run in name order)

    def test_1_inspect_live(self):
        rc, out, err = ctl("inspect", "--data-dir", self.data, "--json")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual(j["series"], N_SERIES, out)
        self.assertEqual(j["format"], 3)
        # format 3: postings in delta blocks, every series under the all key and under
        # each of its labels' keys
        self.assertEqual(j["postings_table"], "postings_blocks")
        self.assertGreaterEqual(j["postings_entries"], 2 * N_SERIES, out)
        self.assertLess(j["postings_rows"], j["postings_entries"], out)
        # format 2 on: series rows are group rows (one group: ids below 256)
        groups = j["index_tables"]["series_groups"]
        self.assertEqual(groups["entries"], N_SERIES, out)
        self.assertEqual(groups["rows"], 1, out)
        self.assertEqual(groups["bad_rows"], 0, out)
        self.assertGreater(groups["raw_bytes"], 0)
        self.assertEqual(j["index_tables"]["series"]["rows"], 0, out)
        self.assertEqual(j["partition_ms"], DAY)
        self.assertGreater(j["wal_bytes"], 0)
        self.assertGreaterEqual(j["metadata"], 1)
        starts = [p["start_ms"] for p in j["partitions"]]
        self.assertEqual(starts, sorted(starts))
        self.assertIn(T0, starts)
        for p in j["partitions"]:
            self.assertEqual(p["end_ms"] - p["start_ms"], DAY)
            self.assertTrue(p["start"].endswith("T00:00:00Z"), p)
            if p["samples"]:
                self.assertGreater(p["bytes_per_sample"], 0.5)
                self.assertLess(p["bytes_per_sample"], 64)
            self.assertEqual(p["samples"], p["hot_samples"] + p["cold"]["samples"], p)
        # stored samples: at most everything imported, and most of it (two full days
        # are sealed; the last partial chunks may still be in the head)
        total = sum(len(v) for v in self.expected.values()) + 1
        self.assertLessEqual(j["totals"]["samples"], total)
        self.assertGreater(j["totals"]["samples"], total // 2)
        top = {m["name"]: m["series"] for m in j["top_metrics"]}
        self.assertEqual(top["cpu_seconds_total"], len(CPU))
        self.assertEqual(j["top_metrics"][0]["name"], "cpu_seconds_total")
        labels = {m["name"]: (m["series"], m["values"]) for m in j["top_labels"]}
        self.assertEqual(labels["__name__"], (N_SERIES, 3))
        self.assertEqual(labels["instance"], (N_SERIES, 4))
        self.assertEqual(labels["mode"], (len(CPU), 2))
        rc, out, err = ctl("inspect", "--data-dir", self.data, "--top", "1")
        self.assertEqual(rc, 0, err)
        self.assertIn("series           %d" % N_SERIES, out)
        self.assertIn("partition width  1d", out)
        self.assertIn("top 1 metric names", out)

    def test_2_verify_live(self):
        rc, out, err = ctl("verify", "--data-dir", self.data)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("%d series" % N_SERIES, out)
        self.assertIn(": OK", out)
        self.assertNotIn("PROBLEM", out)
        # the mdb_copy of the hot state verifies too, and has chunks to corrupt
        rc, out, err = ctl("verify", "--data-dir", self.hot)
        self.assertEqual(rc, 0, out + err)
        self.assertNotIn(" 0 chunks", out)

    def test_3_locked(self):
        rc, out, err = ctl("export", "--data-dir", self.data)
        self.assertEqual(rc, 3, err)
        self.assertIn("the server is running; use GET /api/v1/export", err)
        self.assertEqual(out, "")
        rc, out, err = ctl("compact", "--data-dir", self.data)
        self.assertEqual(rc, 3, err)
        rc, out, err = ctl("downsample", "--data-dir", self.data)
        self.assertEqual(rc, 3, err)

    # -- stopped

    def test_4_export(self):
        self.assertEqual(self.srv.stop(), 0, self.srv.log_tail())
        rc, out, err = ctl("export", "--data-dir", self.data)
        self.assertEqual(rc, 0, err)
        got = parse_export(out)
        self.assertEqual(sorted(got), sorted(self.expected))
        for key, samples in self.expected.items():
            self.assertEqual(len(got[key]), len(samples), key)
            for (t, b), (gt, gb) in zip(samples, got[key]):
                self.assertEqual((gt, gb), (t, b), "%r at %d: %x vs %x" % (key, t, gb, b))
        type(self).export_text = out
        # a selector union and a time range
        rc, out, err = ctl("export", "--data-dir", self.data, "--match",
                           'cpu_seconds_total{instance="i1"}', "--match", "temp_celsius",
                           "--start", str((T0 + DAY) // 1000),
                           "--end", "%d.999" % ((T0 + 2 * DAY) // 1000 - 1))
        self.assertEqual(rc, 0, err)
        got = parse_export(out)
        want = sorted(k for k in self.expected
                      if ("instance", "i1") in k and ("__name__", "cpu_seconds_total") in k
                      or ("__name__", "temp_celsius") in k)
        self.assertEqual(sorted(got), want)
        for key in want:
            exp = [s for s in self.expected[key] if T0 + DAY <= s[0] < T0 + 2 * DAY]
            self.assertEqual(got[key], exp, key)
        rc, out, err = ctl("export", "--data-dir", self.data, "--match", "cpu{")
        self.assertEqual(rc, 2, err)
        self.assertIn("parse error", err)

    def test_4b_cold_after_stop(self):
        """The clean stop converted every partition: inspect shows the cold figures and
        verify checks every block."""
        total = sum(len(v) for v in self.expected.values()) + 1
        rc, out, err = ctl("inspect", "--data-dir", self.data, "--json")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        t = j["totals"]
        self.assertEqual(t["partitions"], 3, out)
        self.assertEqual(t["samples"] + j["head_snapshots"]["samples"], total, out)
        self.assertEqual(t["hot_samples"], 0, out)
        self.assertEqual(t["chunks"], 0, out)
        self.assertEqual(t["cold"]["samples"], t["samples"], out)
        self.assertGreaterEqual(t["cold"]["blocks"], 3, out)
        self.assertEqual(t["cold"]["leftover_blocks"], 0, out)
        self.assertEqual(t["cold"]["bad_blocks"], 0, out)
        # cold blocks are far smaller than XOR chunks (about 1.3 bytes a sample payload)
        self.assertLess(t["cold"]["bytes_per_sample"], 1.5, out)
        for p in j["partitions"]:
            c = p["cold"]
            self.assertGreaterEqual(c["generations"], 1, p)
            self.assertEqual(sum(l["generations"] for l in c["levels"]), c["generations"])
            # the gens row's figures are the blocks' (verify checks the same)
            self.assertEqual(sum(l["samples"] for l in c["levels"]), c["samples"], p)
            self.assertEqual(sum(l["bytes"] for l in c["levels"]), c["bytes"], p)
            self.assertAlmostEqual(p["bytes_per_sample"], p["bytes"] / p["samples"], 3)
            for l in c["levels"]:
                self.assertAlmostEqual(l["bytes_per_sample"], l["bytes"] / l["samples"], 3)
        # every series with data keeps a head entry, short after the seal at close
        heads = j["index_tables"]["head_groups"]
        self.assertEqual(heads["entries"], N_SERIES, out)
        self.assertEqual(j["head_snapshots"]["series"], N_SERIES, out)
        self.assertEqual(j["head_snapshots"]["samples"], 0, out)
        rc, out, err = ctl("inspect", "--data-dir", self.data)
        self.assertEqual(rc, 0, err)
        self.assertIn("hot: 0 chunks, 0 samples; cold: ", out)
        self.assertIn("cold level 0: ", out)
        self.assertIn("series rows      %d in series_groups" % N_SERIES, out)
        rc, out, err = ctl("verify", "--data-dir", self.data)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(": OK", out)
        self.assertIn(" 0 chunks, 0 samples, %d cold blocks, %d cold samples"
                      % (t["cold"]["blocks"], t["cold"]["samples"]), out)

    def test_5_compact_then_verify(self):
        rc, out, err = ctl_tty("compact", "--data-dir", self.data)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("compacting: ", err)  # progress on a terminal
        self.assertIn("partition files:", out)
        self.assertIn("in use (LMDB pages):", out)
        rc, out, err = ctl("inspect", "--data-dir", self.data, "--json")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual(j["series"], N_SERIES)
        # every sample is in a partition or in a head snapshot (the open chunks)
        self.assertEqual(j["totals"]["samples"] + j["head_snapshots"]["samples"],
                         sum(len(v) for v in self.expected.values()) + 1)
        for p in j["partitions"]:
            self.assertTrue(p["compacted"], p)
            # closed: tiers built by the compaction (at a 60 s scrape, 1h only: a 5m
            # row would hold as few samples as it has aggregates)
            self.assertEqual(p["tiers"]["5m_bytes"], 0, p)
            self.assertGreater(p["tiers"]["1h_bytes"], 0, p)
            # compacted: all cold, in one generation merged from the others
            self.assertEqual(p["chunks"], 0, p)
            self.assertEqual(p["cold"]["generations"], 1, p)
        rc, out, err = ctl("verify", "--data-dir", self.data)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(": OK", out)
        # compaction changed nothing a reader sees
        rc, out, err = ctl("export", "--data-dir", self.data)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, self.export_text)
        # compaction built the tiers of the three closed partitions: downsample finds
        # them up to date and reports their size
        rc, out, err = ctl("downsample", "--data-dir", self.data)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(": 3 closed partitions: 0 built, 3 up to date, 0 skipped", out)
        # 60 h of 1-minute samples: 60 one-hour windows a series (one series is
        # shorter); no 5m rows at a 60 s scrape (tsdb/tiers.c, sparse_5m)
        self.assertRegex(out, r"tier 5m: 0 rows, 0 bytes")
        m = re.search(r"tier 1h: (\d+) rows, (\d+) bytes", out)
        self.assertTrue(m, out)
        self.assertGreater(int(m.group(1)), (N_SERIES - 1) * 60, out)
        self.assertLessEqual(int(m.group(1)), N_SERIES * 60, out)
        self.assertGreater(int(m.group(2)), 0, out)

    def test_5b_tiers_and_tombstones(self):
        """A copy with the tiers test_5's compaction built and a deletion: verify checks
        the tier blocks and the tombstones; a corrupt tier block is a problem."""
        d = self.copy_data("tiers")
        rc, out, err = ctl("delete", "--data-dir", d, "--match", 'temp_celsius{instance="i0"}',
                           "--start", str((T0 + DAY) // 1000),
                           "--end", str((T0 + 2 * DAY) // 1000))
        self.assertEqual(rc, 0, out + err)
        self.assertIn("series matched: 1", out)
        # the deletion made the tiers of the partition it touches stale: rebuild them
        rc, out, err = ctl("downsample", "--data-dir", d)
        self.assertEqual(rc, 0, out + err)
        rc, out, err = ctl("inspect", "--data-dir", d, "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["tombstones"], 1, out)
        rc, out, err = ctl("inspect", "--data-dir", d)
        self.assertEqual(rc, 0, err)
        self.assertIn("tombstones       1 deleted range\n", out)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 0, out + err)
        self.assertIn(": OK", out)
        m = re.search(r" (\d+) tier blocks \((\d+) series\), 1 tombstones", out)
        self.assertTrue(m, out)
        # the 1h tier of every series in each of the three partitions (60 s data: no 5m)
        self.assertGreaterEqual(int(m.group(1)), 3, out)
        self.assertGreaterEqual(int(m.group(2)), 3 * (N_SERIES - 1), out)
        # the undeleted data directory has tiers and no tombstone
        rc, out, err = ctl("verify", "--data-dir", self.data)
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(out, r" [1-9]\d* tier blocks \([1-9]\d* series\), 0 tombstones: OK")

        # one byte of a tier block's body changed (LMDB's dump and load, as above)
        part = sorted(os.listdir(os.path.join(d, "raw")))[0]
        state = {}

        def flip(dump):
            first, end = section(dump, "tiers")
            self.assertGreater(end, first, "no tier block to corrupt")
            key, val = dump[first], dump[first + 1]
            pos = 1 + 2 * 64 + 10  # leading space, 64-byte header, into the body
            c = val[pos]
            dump[first + 1] = val[:pos] + ("0" if c != "0" else "1") + val[pos + 1:]
            state["key"] = bytes.fromhex(key.strip())
            return dump

        mdb_roundtrip(os.path.join(d, "raw", part), flip)
        res, last_id = struct.unpack(">BQ", state["key"])
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        lines = problems(out)
        self.assertEqual(len(lines), 1, out)
        self.assertIn("raw/%s tier block (resolution %d, series %d)" % (part, res, last_id),
                      lines[0])
        self.assertIn("CRC32C mismatch", lines[0])
        self.assertIn("1 problem", out)

    def test_6_corrupt_chunk(self):
        d = os.path.join(self.tmp, "corrupt_chunk")
        shutil.copytree(self.hot, d)
        part = sorted(os.listdir(os.path.join(d, "raw")))[0]
        state = {}

        def flip(dump):
            first, end = section(dump, "chunks")
            # pairs of " key" / " value" lines: flip a payload hex digit of record 3
            key, val = dump[first + 4], dump[first + 5]
            pos = 1 + 2 * 32 + 20  # leading space, 32-byte header, into the payload
            c = val[pos]
            dump[first + 5] = val[:pos] + ("0" if c != "0" else "1") + val[pos + 1:]
            state["key"] = key.strip()
            return dump

        mdb_roundtrip(os.path.join(d, "raw", part), flip)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        series_id = int(state["key"][:16], 16)
        lines = [l for l in out.splitlines() if l.startswith("PROBLEM")]
        self.assertEqual(len(lines), 1, out)
        self.assertIn("raw/%s chunk (series %d" % (part, series_id), lines[0])
        self.assertIn("CRC32C mismatch", lines[0])
        self.assertIn("1 problem", out)
        # --json: the same finding, as one object, same exit code
        rc, out, err = ctl("verify", "--data-dir", d, "--json")
        self.assertEqual(rc, 1, out + err)
        j = json.loads(out)
        self.assertEqual((j["ok"], j["n_problems"], len(j["problems"])), (False, 1, 1))
        self.assertIn("raw/%s chunk (series %d" % (part, series_id), j["problems"][0]["where"])
        self.assertIn("CRC32C mismatch", j["problems"][0]["what"])
        self.assertGreater(j["checked"]["chunks"], 0)
        # inspect still works on it
        rc, out, err = ctl("inspect", "--data-dir", d)
        self.assertEqual(rc, 0, err)

    def cold_dump_edit(self, name, edit):
        """Copies the data directory, applies edit(dump, state) to the dump of its first
        partition, and returns (dir, partition, state)."""
        d = self.copy_data(name)
        part = sorted(os.listdir(os.path.join(d, "raw")))[0]
        state = {}
        mdb_roundtrip(os.path.join(d, "raw", part), lambda dump: edit(dump, state))
        return d, part, state

    def test_6b_corrupt_cold_block(self):
        def flip(dump, state):
            first, end = section(dump, "cold")
            self.assertGreater(end, first, "no cold block to corrupt")
            key, val = dump[first], dump[first + 1]
            pos = 1 + 2 * 64 + 10  # leading space, 64-byte header, into the body
            c = val[pos]
            dump[first + 1] = val[:pos] + ("0" if c != "0" else "1") + val[pos + 1:]
            state["key"] = bytes.fromhex(key.strip())
            return dump

        d, part, state = self.cold_dump_edit("corrupt_cold", flip)
        gen, last_id = struct.unpack(">IQ", state["key"][:12])
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        lines = problems(out)
        self.assertEqual(len(lines), 1, out)
        self.assertIn("raw/%s cold block (generation %d, series %d, min_t "
                      % (part, gen, last_id), lines[0])
        self.assertIn("CRC32C mismatch", lines[0])
        self.assertIn("1 problem", out)
        rc, out, err = ctl("inspect", "--data-dir", d)  # headers only: still fine
        self.assertEqual(rc, 0, err)

    def test_6c_cold_leftover_and_order(self):
        # a block of an unlisted generation: an interrupted conversion's, not a problem
        def leftover(dump, state):
            rows = dump_rows(dump, "cold")
            key, val = sorted(rows.items())[0]
            return dump_put(dump, "cold", struct.pack(">I", 0x7FFFFFFF) + key[4:], val)

        d, part, _ = self.cold_dump_edit("leftover", leftover)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("note: raw/%s: 1 unlisted (leftover) blocks of generation %d"
                      % (part, 0x7FFFFFFF), out)
        self.assertIn("(1 unlisted leftover blocks not checked): OK", out)
        rc, out, err = ctl("inspect", "--data-dir", d, "--json")
        self.assertEqual(rc, 0, err)
        p = [p for p in json.loads(out)["partitions"] if p["dir"] == "raw/" + part][0]
        self.assertEqual(p["cold"]["leftover_blocks"], 1, p)
        self.assertGreater(p["cold"]["leftover_bytes"], 64, p)

        # the same block again in its own generation, one ms later: it overlaps its
        # original, its key does not match it, and the generation's totals are off
        def overlap(dump, state):
            rows = dump_rows(dump, "cold")
            key, val = sorted(rows.items())[0]
            t = struct.unpack(">Q", key[12:])[0] + 1
            state["gen"] = struct.unpack(">I", key[:4])[0]
            return dump_put(dump, "cold", key[:12] + struct.pack(">Q", t), val)

        d, part, state = self.cold_dump_edit("overlap", overlap)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("overlaps the previous block of its generation", out)
        self.assertIn("the key's min_t differs from the first timestamp", out)
        self.assertIn('PROBLEM raw/%s: meta "gens" row: generation %d'
                      % (part, state["gen"]), out)

        # the gens row says one sample more than the blocks hold
        def gens(dump, state):
            row = dump_rows(dump, "meta")[b"gens"]
            m = struct.unpack("<I", row[:4])[0]
            self.assertGreaterEqual(m, 1)
            g, lv, smp, nb = struct.unpack("<IIQQ", row[4:28])
            state["g"], state["smp"] = g, smp
            return dump_put(dump, "meta", b"gens",
                            row[:4] + struct.pack("<IIQQ", g, lv, smp + 1, nb) + row[28:])

        d, part, state = self.cold_dump_edit("gens", gens)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        lines = problems(out)
        self.assertEqual(len(lines), 1, out)
        self.assertIn('PROBLEM raw/%s: meta "gens" row: generation %d' % (part, state["g"]),
                      lines[0])
        self.assertIn("says %d samples" % (state["smp"] + 1), lines[0])
        self.assertRegex(lines[0], r"blocks? holds? %d samples" % state["smp"])

        # a gens row that does not parse
        d, part, _ = self.cold_dump_edit(
            "gens_bad", lambda dump, st: dump_put(dump, "meta", b"gens", b"\x05\0\0\0"))
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('PROBLEM raw/%s: meta "gens" row: count 5 does not match the 4-byte row'
                      % part, out)

    def test_7_corrupt_postings(self):
        d = self.copy_data("corrupt_postings")
        want_key = (b"mode\x00user").hex()

        def drop(dump):
            # the first id of the key's first block leaves it
            first, end = section(dump, "postings_blocks")
            for i in range(first, end, 2):
                if dump[i].strip() == want_key:
                    ids = block_ids(bytes.fromhex(dump[i + 1].strip()))
                    state["id"] = ids[0]
                    if len(ids) > 1:
                        dump[i + 1] = " " + id_block(ids[1:]).hex()
                    else:
                        del dump[i:i + 2]
                    return dump
            raise AssertionError("postings key mode=user not in the dump")

        state = {}
        mdb_roundtrip(os.path.join(d, "index.mdb"), drop)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('PROBLEM index series %d: missing from postings key mode="user"'
                      % state["id"], out)

        # a block that does not decode (a varint cut off), and one whose ids run back
        d = self.copy_data("corrupt_blocks")

        def bad(dump):
            dump_put(dump, "postings_blocks", b"mode\x00zz", struct.pack(">Q", 1) + b"\x80")
            return dump_put(dump, "postings_blocks", b"mode\x00zz", id_block([7, 9]))

        mdb_roundtrip(os.path.join(d, "index.mdb"), bad)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('PROBLEM index postings mode="zz": row of 9 bytes: block does not '
                      "decode", out)
        self.assertIn('PROBLEM index postings mode="zz": lists series 7, which does not have '
                      "that label", out)
        rc, out, err = ctl("inspect", "--data-dir", d, "--json")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual(j["postings_table"], "postings_blocks")
        self.assertGreater(j["postings_entries"], j["postings_rows"])  # blocks of many ids
        self.assertGreater(j["index_live_bytes"], 0)
        self.assertLessEqual(j["index_live_bytes"], j["index_bytes"])

    def test_7b_series_and_group_rows(self):
        d = self.copy_data("groups")
        state = {}

        def edit(dump):
            post = section(dump, "postings_blocks")
            labels = {}  # id -> [(name, value)], from the postings keys that list it
            for i in range(post[0], post[1], 2):
                k = bytes.fromhex(dump[i].strip())
                for sid in block_ids(bytes.fromhex(dump[i + 1].strip())):
                    if b"\0" in k[1:]:
                        n, v = k.split(b"\0", 1)
                        labels.setdefault(sid, []).append((n.decode(), v.decode()))
            ids = sorted(labels)
            self.assertEqual(len(ids), N_SERIES)
            meta = dump_rows(dump, "meta")
            state["next_id"] = struct.unpack("<Q", meta[b"next_id"])[0]
            # a series row beside its group entry: the same labels are fine (format 2
            # before its first checkpoint), other labels are a problem
            same, other = ids[0], ids[1]
            state["same"], state["other"] = same, other
            dump_put(dump, "series", struct.pack(">Q", same), pack_labels(sorted(labels[same])))
            dump_put(dump, "series", struct.pack(">Q", other),
                     pack_labels([("__name__", "impostor"), ("instance", "i9")]))
            # group 1 (ids 256..511): an id past next_id whose labels are not sorted
            dump_put(dump, "series_groups", struct.pack(">Q", 1),
                     group_row([(5, pack_labels([("zz", "1"), ("__name__", "late")]))]))
            # a head group row of an unknown version, and one whose entry runs past the end
            dump_put(dump, "head_groups", struct.pack(">Q", 2), group_row([(1, b"x")], 7))
            dump_put(dump, "head_groups", struct.pack(">Q", 3),
                     bytes([1]) + zstd_raw_frame(struct.pack("<BI", 3, 99) + bytes(17)))
            # a short head snapshot (version 2) one byte too long, of series 1 (known)
            self.assertIn(struct.pack(">Q", 0), dump_rows(dump, "head_groups"))
            dump_put(dump, "heads", struct.pack(">Q", 1), b"\x02" + bytes(17))
            return dump

        mdb_roundtrip(os.path.join(d, "index.mdb"), edit)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("note: 2 series are in both the series table and series_groups", out)
        self.assertNotIn("PROBLEM index series %d:" % state["same"], out)
        self.assertIn('PROBLEM index series %d: in both the series table and series_groups, '
                      'with different labels: {__name__="impostor", instance="i9"} in the series table'
                      % state["other"], out)
        self.assertIn("PROBLEM index series_groups series 261: id is not below meta next_id "
                      "%d" % state["next_id"], out)
        self.assertIn('PROBLEM index series_groups series 261: label set {zz="1", '
                      '__name__="late"} is not canonical: labels not sorted', out)
        self.assertIn("PROBLEM index head_groups group 2: version byte 7, not 1", out)
        self.assertIn("PROBLEM index head_groups group 3: entry 0 (slot 3): length 99 past "
                      "the end", out)
        self.assertIn("PROBLEM index heads series 1: snapshot does not parse: short snapshot "
                      "(version 2) of 18 bytes, not 17", out)
        self.assertIn("note: 1 series have a snapshot in both the heads table and head_groups",
                      out)
        # the impostor's labels are what its postings are checked against
        self.assertIn("PROBLEM index series %d: missing from postings key "
                      '__name__="impostor"' % state["other"], out)
        rc, out, err = ctl("inspect", "--data-dir", d, "--json")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        # the rows beside their group entries count once; group 1's entry is one more
        self.assertEqual(j["series"], N_SERIES + 1)
        self.assertEqual(j["index_tables"]["series"]["rows"], 2)
        self.assertEqual(j["index_tables"]["series_groups"]["rows"], 2)
        self.assertEqual(j["index_tables"]["head_groups"]["bad_rows"], 2)
        self.assertEqual(j["index_tables"]["heads"]["rows"], 1)
        self.assertEqual(j["head_snapshots"]["series"], N_SERIES)  # series 1 counts once

    def test_9_golden_format_1(self):
        """The golden format-1 directory (no cold data, per-series rows, version-1 head
        snapshots, a WAL tail) verifies clean and inspects as format 1."""
        d = os.path.join(self.tmp, "golden-v1")
        shutil.copytree(os.path.join(tsdbtest.TESTDATA, "golden", "db-v1"), d)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("6 series", out)
        self.assertIn("16 chunks, 1157 samples, 0 cold blocks, 0 cold samples, 0 tier blocks "
                      "(0 series), 0 tombstones: OK", out)
        rc, out, err = ctl("inspect", "--data-dir", d, "--json")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual(j["format"], 1)
        self.assertEqual(j["series"], 6)
        self.assertEqual(j["index_tables"]["series"]["rows"], 6)
        self.assertEqual(j["index_tables"]["series_groups"]["rows"], 0)
        self.assertEqual(j["head_snapshots"], {"series": 6, "samples": 643})
        self.assertEqual(j["totals"]["cold"]["generations"], 0)
        self.assertEqual(j["postings_table"], "postings")  # a u64 per row
        self.assertEqual(j["postings_entries"], j["postings_rows"])
        entries, keys = j["postings_entries"], j["postings_keys"]
        # opened by the engine (compact opens the database): converted to format 3 with
        # the same postings, and still clean
        rc, out, err = ctl("compact", "--data-dir", d)
        self.assertEqual(rc, 0, out + err)
        rc, out, err = ctl("verify", "--data-dir", d)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("6 series", out)
        rc, out, err = ctl("inspect", "--data-dir", d, "--json")
        self.assertEqual(rc, 0, err)
        j = json.loads(out)
        self.assertEqual(j["format"], 3)
        self.assertEqual(j["postings_table"], "postings_blocks")
        self.assertEqual((j["postings_entries"], j["postings_keys"]), (entries, keys))
        self.assertLess(j["postings_rows"], entries)

    # -- usage and exit codes

    def test_8_usage(self):
        rc, out, err = ctl("--help")
        self.assertEqual(rc, 0)
        for word in ("inspect", "verify", "export", "import", "compact", "downsample",
                     "backup", "restore", "Exit codes"):
            self.assertIn(word, out)
        self.assertEqual(ctl()[0], 2)
        self.assertEqual(ctl("frobnicate", "--data-dir", self.tmp)[0], 2)
        self.assertEqual(ctl("inspect")[0], 2)
        self.assertEqual(ctl("inspect", "--data-dir", self.tmp, "--top", "x")[0], 2)
        self.assertEqual(ctl("export", "--data-dir", self.tmp, "--start", "yesterday")[0], 2)
        self.assertEqual(ctl("verify", "--data-dir", self.tmp, "--json=yes")[0], 2)  # a flag takes no value
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        missing = os.path.join(self.tmp, "missing")
        for cmd in ("inspect", "verify", "export", "compact", "downsample"):
            rc, out, err = ctl(cmd, "--data-dir", empty)
            self.assertEqual(rc, 4, cmd + err)
            self.assertIn("not a database", err)
            self.assertEqual(ctl(cmd, "--data-dir", missing)[0], 4, cmd)
        self.assertEqual(os.listdir(empty), [])  # nothing created
        self.assertFalse(os.path.exists(missing))


if __name__ == "__main__":
    tsdbtest.main()
