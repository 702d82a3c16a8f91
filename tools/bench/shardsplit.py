#!/usr/bin/python3
"""Splits a benchmark bodies file over N tsdbd shards the way Prometheus' `hashmod`
write relabelling splits its remote write (docs/scale-out.md):

    write_relabel_configs:
      - {source_labels: [__name__, instance, job], separator: ";", modulus: N,
         target_label: __tmp_shard, action: hashmod}
      - {source_labels: [__tmp_shard], regex: "<i>", action: keep}
      - {regex: __tmp_shard, action: labeldrop}

hashmod, as Prometheus implements it (model/relabel/relabel.go): the values of the
source labels are joined with the separator (a label the series does not have counts as
the empty string), the MD5 digest of those bytes is taken, its last 8 bytes (digest
bytes 8..15) are read as one big-endian unsigned 64-bit integer, and that integer
modulo N is the shard. Older Prometheus versions computed the same number by OR-ing
every digest byte shifted left by (15 - i) * 8 bits into a uint64: for bytes 0..7 the
shift is 64 bits or more, which Go defines as 0, so only bytes 8..15 survive, in
big-endian order. tests/integration/test_scaleout_e2e.py (shard_of) checks this formula
against where a real Prometheus 2.42 put every series.

Remote write bodies (node, long): each body is snappy-decoded and its WriteRequest
walked; every TimeSeries goes, byte for byte, to the shard its labels hash to, and each
shard's TimeSeries are encoded again into WriteRequests of at most the source's samples
per request, snappy-compressed. Other top-level WriteRequest fields (metadata) go to
every shard, as Prometheus sends metadata to every queue unrelabelled.

Line protocol bodies (cpu): there are no Prometheus labels to relabel, so each line goes
to the shard of its `hostname` tag value hashed the same way (md5 of the value, last 8
bytes, big-endian, modulo N); lines are regrouped into bodies of the source's lines per
request.

In both, a record keeps its sender shard (the `shard` field of the bodies file that
benchsend uses to pick a connection), and the order of records within a sender shard is
kept, so every series still reaches its tsdbd in time order.

Output: <dir>/<stem>.hashmod<N>-<i>.bodies for i in 0..N-1, and a small JSON sidecar
<stem>.hashmod<N>.json (source size, mtime, per-shard series/samples/requests). A second
call with the same source and N finds the sidecar and reuses the files (a cache, like
the dataset itself within one run).

Usage: shardsplit.py --bodies DIR/node.rw1.bodies --shards 3 [--kind rw1|lp] [--verify]
"""
import argparse
import hashlib
import json
import os
import struct
import sys

import snappy

HEADER = struct.Struct("<8sII")
RECORD = struct.Struct("<III")
RW_SOURCE_LABELS = ("__name__", "instance", "job")
LP_SOURCE_LABELS = ("hostname",)


def hashmod(values, modulus, separator=";"):
    """The shard Prometheus' hashmod relabelling gives these source label values."""
    d = hashlib.md5(separator.join(v or "" for v in values).encode()).digest()
    return int.from_bytes(d[8:], "big") % modulus


# ---- bodies files ----------------------------------------------------------------------

def read_bodies(path):
    """Yields (sender_shard, n_samples, body) of a TSBENCH1 file; returns nothing else.
    The header's (n_bodies, n_shards) are in read_header."""
    with open(path, "rb") as f:
        magic, n, _ = HEADER.unpack(f.read(HEADER.size))
        if magic != b"TSBENCH1":
            raise ValueError("%s: not a bodies file" % path)
        for _ in range(n):
            sh, ns, ln = RECORD.unpack(f.read(RECORD.size))
            body = f.read(ln)
            if len(body) != ln:
                raise ValueError("%s: truncated" % path)
            yield sh, ns, body


def read_header(path):
    with open(path, "rb") as f:
        magic, n, shards = HEADER.unpack(f.read(HEADER.size))
    return n, shards


class Writer:
    def __init__(self, path, n_sender_shards):
        self.f = open(path + ".tmp", "wb")
        self.path = path
        self.f.write(HEADER.pack(b"TSBENCH1", 0, n_sender_shards))
        self.n = self.samples = self.bytes = 0

    def add(self, sender_shard, n_samples, body):
        self.f.write(RECORD.pack(sender_shard, n_samples, len(body)))
        self.f.write(body)
        self.n += 1
        self.samples += n_samples
        self.bytes += len(body)

    def close(self):
        self.f.seek(8)
        self.f.write(struct.pack("<I", self.n))
        self.f.close()
        os.replace(self.path + ".tmp", self.path)


# ---- protobuf, just what a WriteRequest needs -----------------------------------------

def varint_at(b, i):
    """(value, next index) of the varint at b[i]."""
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(b):
    """Yields (field number, wire type, start of the field, value start, value end) of a
    message; for wire type 0 the value is the varint's bytes."""
    i, n = 0, len(b)
    while i < n:
        start = i
        key, i = varint_at(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, j = varint_at(b, i)
        elif wt == 1:
            j = i + 8
        elif wt == 2:
            ln, i = varint_at(b, i)
            j = i + ln
        elif wt == 5:
            j = i + 4
        else:
            raise ValueError("wire type %d" % wt)
        if j > n:
            raise ValueError("field past the end")
        yield num, wt, start, i, j
        i = j


def parse_timeseries(ts):
    """({label name: value}, samples, end of the leading label fields or -1 if a field
    other than a label comes before the last label) of one TimeSeries message."""
    labels, samples, label_end, other_seen = {}, 0, 0, False
    for num, wt, start, a, b in fields(ts):
        if num == 1 and wt == 2:
            name = value = ""
            for n2, w2, _, a2, b2 in fields(ts[a:b]):
                if n2 == 1 and w2 == 2:
                    name = ts[a + a2:a + b2].decode("utf-8", "replace")
                elif n2 == 2 and w2 == 2:
                    value = ts[a + a2:a + b2].decode("utf-8", "replace")
            labels[name] = value
            label_end = -1 if other_seen else b
        else:
            other_seen = True
            if num == 2 and wt == 2:
                samples += 1
    return labels, samples, label_end


class RwSplitter:
    """Assigns each TimeSeries of a WriteRequest to its shard. The shard of a label
    prefix (the leading label fields, verified by a full parse) is cached, so a
    TimeSeries laid out as labels + one Sample (as Prometheus sends and gen.py writes) is
    split without parsing its labels again."""

    def __init__(self, modulus, source_labels=RW_SOURCE_LABELS):
        self.mod = modulus
        self.src = source_labels
        self.cache = {}          # label prefix bytes -> shard
        self.series = [set() for _ in range(modulus)]  # label prefixes per shard
        self.fast = self.slow = 0

    def shard_of(self, ts):
        """(shard, samples) of one TimeSeries message."""
        n = len(ts)
        cache = self.cache
        # Fast path: ts == prefix + 0x12 <L> <L bytes: one Sample>, prefix known.
        for L in range(20, 1, -1):
            if n >= L + 2 and ts[n - L - 2] == 0x12 and ts[n - L - 1] == L:
                sh = cache.get(ts[:n - L - 2])
                if sh is not None:
                    self.fast += 1
                    return sh, 1
        self.slow += 1
        labels, samples, label_end = parse_timeseries(ts)
        sh = hashmod([labels.get(k, "") for k in self.src], self.mod)
        if label_end > 0:
            prefix = bytes(ts[:label_end])
            cache[prefix] = sh
            self.series[sh].add(prefix)
        else:
            self.series[sh].add(tuple(sorted(labels.items())))
        return sh, samples

    def split(self, body):
        """[[encoded TimeSeries fields]] per shard, [samples] per shard, [other fields]."""
        raw = snappy.uncompress(body)
        per = [[] for _ in range(self.mod)]
        counts = [0] * self.mod
        other = []
        mv = memoryview(raw)
        for num, wt, start, a, b in fields(raw):
            if num == 1 and wt == 2:
                sh, ns = self.shard_of(bytes(mv[a:b]))
                per[sh].append(raw[start:b])
                counts[sh] += ns
            else:
                other.append(raw[start:b])
        return per, counts, other


def split_rw(src, dsts, n, max_samples):
    _, n_sender = read_header(src)
    ws = [Writer(p, n_sender) for p in dsts]
    sp = RwSplitter(n)
    # Per (shard, sender shard): pending TimeSeries fields and their samples.
    pend = {}
    for sender, _, body in read_bodies(src):
        per, counts, other = sp.split(body)
        for sh in range(n):
            if not per[sh] and not other:
                continue
            buf, cnt = pend.setdefault((sh, sender), ([], [0]))
            buf.extend(per[sh])
            cnt[0] += counts[sh]
            if other:   # metadata: to every shard, in place
                buf.extend(other)
            if cnt[0] >= max_samples:
                ws[sh].add(sender, cnt[0], snappy.compress(b"".join(buf)))
                pend[(sh, sender)] = ([], [0])
    for (sh, sender), (buf, cnt) in sorted(pend.items()):
        if buf:
            ws[sh].add(sender, cnt[0], snappy.compress(b"".join(buf)))
    for w in ws:
        w.close()
    return {"series": [len(s) for s in sp.series], "fast_path": sp.fast, "parsed": sp.slow}


# ---- line protocol ----------------------------------------------------------------------

def lp_tag(line, key):
    """Value of tag `key` of one line protocol line ("" if absent); handles escaped
    commas, spaces and equals signs in the measurement and tags."""
    i, n = 0, len(line)
    # series key ends at the first unescaped space
    tags = []
    cur = []
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n:
            cur.append(line[i + 1])
            i += 2
            continue
        if c == "," or c == " ":
            tags.append("".join(cur))
            cur = []
            if c == " ":
                break
        else:
            cur.append(c)
        i += 1
    else:
        tags.append("".join(cur))
    for t in tags[1:]:
        k, _, v = t.partition("=")
        if k == key:
            return v
    return ""


def lp_fields(line):
    """Number of fields of one line protocol line (quoted string values may hold commas
    and spaces)."""
    # skip the series key
    i, n = 0, len(line)
    while i < n:
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == " ":
            break
        i += 1
    i += 1
    count, inq = 1, False
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            inq = not inq
        elif not inq and c == ",":
            count += 1
        elif not inq and c == " ":
            break
        i += 1
    return count


def split_lp(src, dsts, n, max_lines):
    _, n_sender = read_header(src)
    ws = [Writer(p, n_sender) for p in dsts]
    cache = {}    # series key -> shard
    series = [set() for _ in range(n)]
    pend = {}
    for sender, _, body in read_bodies(src):
        for line in body.decode("utf-8").split("\n"):
            if not line or line.startswith("#"):
                continue
            plain = "\\" not in line and '"' not in line
            if plain:   # no escapes, no string fields: split by plain string methods
                sp = line.find(" ")
                key = line[:sp] if sp >= 0 else line
                sh = cache.get(key)
                nf = line.count(",", sp, line.rfind(" ")) + 1 if line.count(" ") == 2 else lp_fields(line)
            else:
                key, sh, nf = None, None, lp_fields(line)
            if sh is None:
                sh = hashmod([lp_tag(line, k) for k in LP_SOURCE_LABELS], n)
                if key is not None:
                    cache[key] = sh
            series[sh].add(key if key is not None else line.split(" ", 1)[0])
            lines, cnt = pend.setdefault((sh, sender), ([], [0]))
            lines.append(line)
            cnt[0] += nf
            if len(lines) >= max_lines:
                ws[sh].add(sender, cnt[0], ("\n".join(lines) + "\n").encode())
                pend[(sh, sender)] = ([], [0])
    for (sh, sender), (lines, cnt) in sorted(pend.items()):
        if lines:
            ws[sh].add(sender, cnt[0], ("\n".join(lines) + "\n").encode())
    for w in ws:
        w.close()
    # series here: line protocol series keys (measurement + tags); each key has the
    # line's fields as series in tsdbd
    return {"series_keys": [len(s) for s in series]}


# ---- entry point ------------------------------------------------------------------------

def split(src, n, kind=None, max_per_body=None):
    """Splits src into n shard files next to it (or reuses them); returns the sidecar
    dict: {"files": [...], "samples": [...], "requests": [...], ...}."""
    kind = kind or ("lp" if src.endswith(".lp.bodies") else "rw1")
    d, base = os.path.split(src)
    stem = base[:-len(".bodies")] if base.endswith(".bodies") else base
    files = [os.path.join(d, "%s.hashmod%d-%d.bodies" % (stem, n, i)) for i in range(n)]
    side = os.path.join(d, "%s.hashmod%d.json" % (stem, n))
    st = os.stat(src)
    key = {"source": base, "source_bytes": st.st_size, "source_mtime_ns": st.st_mtime_ns,
           "shards": n, "kind": kind}
    try:
        with open(side) as f:
            old = json.load(f)
        if old.get("key") == key and all(os.path.exists(p) for p in files):
            old["cached"] = True
            return old
    except (OSError, ValueError):
        pass
    if max_per_body is None:
        # the source's own request size: its largest record
        biggest = 0
        for _, ns, body in read_bodies(src):
            biggest = max(biggest, ns if kind == "rw1" else body.count(b"\n"))
        max_per_body = biggest or 2000
    if kind == "rw1":
        info = split_rw(src, files, n, max_per_body)
    else:
        info = split_lp(src, files, n, max_per_body)
    out = {"key": key, "files": [os.path.basename(p) for p in files], "kind": kind,
           "max_per_body": max_per_body,
           "source_labels": list(RW_SOURCE_LABELS if kind == "rw1" else LP_SOURCE_LABELS),
           "samples": [], "requests": [], "body_bytes": []}
    out.update(info)
    for p in files:
        nb = ns = nbytes = 0
        for _, s, body in read_bodies(p):
            nb += 1
            ns += s
            nbytes += len(body)
        out["samples"].append(ns)
        out["requests"].append(nb)
        out["body_bytes"].append(nbytes)
    with open(side, "w") as f:
        json.dump(out, f, indent=1)
    out["cached"] = False
    return out


def verify(src, n, kind=None):
    """Re-reads the shard files of src the slow way (every TimeSeries or line parsed in
    full, no cache) and checks: every series is on the shard hashmod names, no series
    on two shards, per sender shard the samples of each series in time order, and the
    shards' samples add up to the source's per series. Returns a list of problems."""
    kind = kind or ("lp" if src.endswith(".lp.bodies") else "rw1")
    info = split(src, n, kind)
    d = os.path.dirname(src)

    def units(path):
        """Yields (sender shard, series key, hashmod values, n samples, timestamp)."""
        for sender, ns, body in read_bodies(path):
            got = 0
            if kind == "rw1":
                raw = snappy.uncompress(body)
                for num, wt, _, a, b in fields(raw):
                    if num != 1 or wt != 2:
                        continue
                    ts = raw[a:b]
                    labels, samples, _ = parse_timeseries(ts)
                    t = None
                    for n2, w2, _, a2, b2 in fields(ts):
                        if n2 == 2 and w2 == 2:
                            for n3, w3, _, a3, _ in fields(ts[a2:b2]):
                                if n3 == 2 and w3 == 0:
                                    t = varint_at(ts[a2:b2], a3)[0]
                    got += samples
                    yield (sender, tuple(sorted(labels.items())),
                           [labels.get(k, "") for k in RW_SOURCE_LABELS], samples, t)
            else:
                for line in body.decode().split("\n"):
                    if line:
                        f = lp_fields(line)
                        got += f
                        yield (sender, line.split(" ")[0], [lp_tag(line, "hostname")], f,
                               int(line.rsplit(" ", 1)[1]))
            if got != ns:
                yield ("count", path, ns, got, None)

    problems = []
    where, per_series, last = {}, {}, {}
    for i, name in enumerate(info["files"]):
        for u in units(os.path.join(d, name)):
            if u[0] == "count":
                problems.append("%s: a record says %d samples, holds %d" % (u[1], u[2], u[3]))
                continue
            sender, key, vals, ns, t = u
            h = hashlib.md5(";".join(vals).encode()).digest()
            if int.from_bytes(h[8:], "big") % n != i:
                problems.append("series %s on shard %d" % (key, i))
            if where.setdefault(key, i) != i:
                problems.append("series %s on shards %d and %d" % (key, where[key], i))
            per_series[key] = per_series.get(key, 0) + ns
            if t is not None:
                if last.get((sender, key), -1) > t:
                    problems.append("series %s out of time order" % (key,))
                last[(sender, key)] = t
    src_series = {}
    for u in units(src):
        if u[0] != "count":
            src_series[u[1]] = src_series.get(u[1], 0) + u[3]
    if src_series != per_series:
        problems.append("per-series samples differ from the source's (%d vs %d series)" % (
            len(src_series), len(per_series)))
    return problems[:20]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bodies", required=True)
    ap.add_argument("--shards", type=int, required=True)
    ap.add_argument("--kind", choices=["rw1", "lp"])
    ap.add_argument("--verify", action="store_true", help="split (or reuse), then check the "
                    "shard files the slow way; exit 1 on any problem")
    a = ap.parse_args()
    if a.shards < 1:
        ap.error("--shards must be 1 or more")
    if a.verify:
        problems = verify(a.bodies, a.shards, a.kind)
        for p in problems:
            print(p)
        print("ok" if not problems else "%d problem(s)" % len(problems))
        sys.exit(1 if problems else 0)
    json.dump(split(a.bodies, a.shards, a.kind), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
