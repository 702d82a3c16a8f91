#!/usr/bin/python3
"""Deterministic datasets for the side-by-side benchmark, written as pre-encoded bodies.

Two datasets (see README.md):

  node  node_exporter-like. Metric names, label sets and kinds come from one real scrape
        of prometheus-node-exporter (node_exporter_seed.prom, refresh with --scrape URL).
        The scrape is replicated over N instances (labels instance="host-NNNN:9100",
        job="node") and evolved over S scrapes 15 s apart: counters grow by increments at
        their seed precision and reset to 0 when an instance "reboots" (rare), gauges
        random-walk at their precision, a share of gauges (and every *_info, size, MTU,
        id, flag-like series) stays constant; each instance scrapes at its own offset with
        -3..+3 ms jitter and misses 0.2 % of its scrapes. Encoded as Prometheus remote
        write 1.0 (snappy protobuf, one sample per TimeSeries as Prometheus sends it,
        2,000 samples per request).
  cpu   TSBS "cpu-only": H hosts with TSBS' ten tags and ten usage_* integer fields,
        one point every 10 s, random walks clamped to 0..100. Encoded as InfluxDB line
        protocol (ms timestamps, 500 lines = 5,000 samples per request).

The bodies file format is the one tools/main_benchsend.c reads (documented there).
Series are split into shards (by instance/host); a shard's bodies are in time order.
Everything is a pure function of --seed and the end (the last timestamp: --end-ms, else
now - 2 min rounded down to the minute; --end-days-ago N moves it N days further back),
so every system receives byte-identical bodies within a run, and a dataset ending days
ago is the same dataset shifted in time.

Usage: gen.py --size tiny|small|medium|large|1m --out DIR [--end-ms MS] [--end-days-ago N]
              [--seed N] [--shards N] [--only node,cpu] [--scrape URL]
Writes DIR/node.rw1.bodies, DIR/cpu.lp.bodies, DIR/manifest.json.
"""
import argparse
import json
import math
import os
import random
import re
import struct
import sys
import time
import urllib.request

import snappy

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_FILE = os.path.join(HERE, "node_exporter_seed.prom")

# (node instances, node scrapes, cpu hosts, cpu points per host)
SIZES = {
    "tiny": (4, 10, 50, 20),
    "small": (40, 100, 1000, 200),
    "medium": (200, 200, 5000, 400),
    "large": (1000, 400, 20000, 1000),
    # A million active series each, briefly: memory and look-ups per series at scale.
    "1m": (2000, 20, 100000, 20),
}
DAY_MS = 86400000
NODE_INTERVAL_MS = 15000
CPU_INTERVAL_MS = 10000
RW_SAMPLES_PER_REQ = 2000
LP_LINES_PER_REQ = 500
CPU_FIELDS = ["usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
              "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"]


def varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pb_bytes(field, payload):
    return bytes([(field << 3) | 2]) + varint(len(payload)) + payload


class BodyWriter:
    """Appends records to a bodies file and counts them."""

    def __init__(self, path, n_shards):
        self.f = open(path, "wb")
        self.f.write(b"TSBENCH1" + struct.pack("<II", 0, n_shards))
        self.n = 0
        self.bytes = 0
        self.n_shards = n_shards

    def add(self, shard, n_samples, body):
        self.f.write(struct.pack("<III", shard, n_samples, len(body)))
        self.f.write(body)
        self.n += 1
        self.bytes += len(body)

    def close(self):
        self.f.seek(8)
        self.f.write(struct.pack("<I", self.n))
        self.f.close()


# ---- node dataset -------------------------------------------------------------------

LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
CONSTANT_RE = re.compile(r"_info$|mtu|_size_bytes$|MemTotal|_up$|_success$|flags|_id$|"
                         r"_type$|_group$|_mode$|_protocol|iface|_limit|_max$|_total_bytes$|"
                         r"cpu_frequency_(max|min)|_start_time_seconds$|scaling")


def parse_seed(text):
    """Returns [(name, labels dict, value string, kind)] with kind counter|gauge|const."""
    types = {}
    out = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(None, 3)
            types[fam] = typ
            continue
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            lab_text, val = rest.rsplit("}", 1)
            labels = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in LABEL_RE.findall(lab_text)}
        else:
            name, val = line.split(None, 1)
            labels = {}
        val = val.split()[0]
        fam = re.sub(r"_(sum|count|bucket)$", "", name)
        typ = types.get(name) or types.get(fam, "untyped")
        if typ == "counter" or (typ in ("summary", "histogram") and name != fam) or name.endswith("_total"):
            kind = "counter"
        elif typ in ("summary", "histogram"):
            kind = "gauge"  # quantiles
        else:
            kind = "gauge"
        if kind == "gauge" and CONSTANT_RE.search(name):
            kind = "const"
        out.append((name, labels, val, kind))
    return out


def decimals_of(s):
    """Precision of a seed value: decimals shown, 0 for integers and exponent forms."""
    if "e" in s or "E" in s or "." not in s:
        return 0
    return len(s.split(".")[1])


class NodeSeries:
    __slots__ = ("prefix", "kind", "v", "step", "dec", "zero", "start")


def node_series_for(seed, inst, rng, series_rng_kinds):
    out = []
    for (name, labels, sval, kind) in seed:
        labs = dict(labels)
        labs["__name__"] = name
        labs["instance"] = "host-%04d:9100" % inst
        labs["job"] = "node"
        lb = b"".join(pb_bytes(1, pb_bytes(1, k.encode()) + pb_bytes(2, labs[k].encode()))
                      for k in sorted(labs) if labs[k] != "")
        s = NodeSeries()
        s.prefix = lb
        try:
            v = float(sval)
        except ValueError:
            v = 0.0
        if math.isnan(v) or math.isinf(v):
            v = 0.0
        s.dec = decimals_of(sval)
        s.kind = kind
        if kind == "gauge" and rng.random() < 0.4:
            s.kind = "const"
        s.zero = (v == 0 and rng.random() < 0.8)
        if s.kind == "counter":
            v = 0.0 if s.zero else round(v * rng.uniform(0.1, 3.0), s.dec)
            # Mean increment per scrape: busy counters move, others crawl.
            s.step = max(abs(v) / rng.uniform(2e3, 2e5), 10 ** -s.dec if s.dec else 1)
        elif s.kind == "gauge":
            if not s.zero:
                v = round(v * rng.uniform(0.5, 1.5), s.dec)
            s.step = max(abs(v) * 0.01, 10 ** -s.dec if s.dec else 1)
        else:
            s.step = 0
        s.v = v
        s.start = v
        out.append(s)
    return out


def gen_node(args, n_inst, n_scrapes, end_ms, man):
    seed = parse_seed(open(args.seed_file).read())
    rng = random.Random(args.seed)
    per_inst = [node_series_for(seed, i, random.Random(args.seed * 7919 + i), None) for i in range(n_inst)]
    start_ms = end_ms - (n_scrapes - 1) * NODE_INTERVAL_MS - NODE_INTERVAL_MS
    offsets = [rng.randrange(0, NODE_INTERVAL_MS) for _ in range(n_inst)]
    n_shards = args.shards
    bw = BodyWriter(os.path.join(args.out, "node.rw1.bodies"), n_shards)
    bufs = [[] for _ in range(n_shards)]
    counts = [0] * n_shards
    total = 0
    load1_samples = 0
    resets = 0
    missed = 0
    pack_d = struct.Struct("<d").pack
    gauss = rng.gauss
    rnd = rng.random
    for k in range(n_scrapes):
        for i in range(n_inst):
            if rnd() < 0.002:
                missed += 1
                continue
            ts = start_ms + k * NODE_INTERVAL_MS + offsets[i] + rng.randint(-3, 3)
            tsb = b"\x10" + varint(ts)
            reboot = rnd() < 0.0005  # about one reboot per instance per 8 hours
            if reboot:
                resets += 1
            sh = i % n_shards
            buf = bufs[sh]
            for s in per_inst[i]:
                if s.kind == "counter":
                    if reboot:
                        s.v = 0.0
                    elif not s.zero or rnd() < 0.01:
                        inc = rng.expovariate(1.0 / s.step)
                        s.v = round(s.v + (round(inc, s.dec) if s.dec else float(int(inc + 0.5))), s.dec)
                elif s.kind == "gauge" and not (s.zero and rnd() < 0.95):
                    nv = s.v + gauss(0, s.step)
                    if s.start >= 0 and nv < 0:
                        nv = -nv
                    s.v = round(nv, s.dec)
                smp = b"\x09" + pack_d(s.v) + tsb
                ts_body = s.prefix + b"\x12" + varint(len(smp)) + smp
                buf.append(b"\x0a" + varint(len(ts_body)) + ts_body)
            load1_samples += 1
            counts[sh] += len(per_inst[i])
            total += len(per_inst[i])
            if counts[sh] >= RW_SAMPLES_PER_REQ:
                bw.add(sh, counts[sh], snappy.compress(b"".join(buf)))
                bufs[sh] = []
                counts[sh] = 0
    for sh in range(n_shards):
        if counts[sh]:
            bw.add(sh, counts[sh], snappy.compress(b"".join(bufs[sh])))
    bw.close()
    n_series = sum(len(x) for x in per_inst)
    man["node"] = {
        "file": "node.rw1.bodies", "protocol": "remote write 1.0 (snappy protobuf)",
        "instances": n_inst, "scrapes": n_scrapes, "interval_ms": NODE_INTERVAL_MS,
        "series": n_series, "series_per_instance": len(seed), "samples": total,
        "requests": bw.n, "body_bytes": bw.bytes, "shards": n_shards,
        "start_ms": start_ms, "end_ms": start_ms + (n_scrapes - 1) * NODE_INTERVAL_MS + NODE_INTERVAL_MS + 3,
        "missed_scrapes": missed, "reboots": resets,
        # check: sum(count_over_time(node_load1[..])) must equal this
        "check_metric": "node_load1", "check_samples": load1_samples,
    }


# ---- long dataset: a month of history at 60 s, for long-range dashboards -----------

# instances per size; every size covers LONG_DAYS days at LONG_INTERVAL_MS
LONG_SIZES = {"tiny": 2, "small": 25, "medium": 100, "large": 400, "1m": 100}
LONG_DAYS = 30
LONG_INTERVAL_MS = 60000
LONG_POINTS_PER_SERIES_REQ = 60  # one hour of one series per TimeSeries, as a backfill sends


def long_series(inst):
    """[(labels bytes prefix, kind, step)] of one instance: 16 series."""
    base = [("instance", "host-%04d:9100" % inst), ("job", "long")]
    out = []
    for mode in ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"):
        out.append(("long_cpu_seconds_total", [("mode", mode)], "counter", 30.0 if mode == "idle" else 3.0))
    for dev in ("eth0", "eth1", "eth2", "eth3"):
        out.append(("long_network_receive_bytes_total", [("device", dev)], "counter", 4e5))
    out.append(("long_http_requests_total", [("code", "200")], "counter", 120.0))
    out.append(("long_load1", [], "gauge", 0.2))
    out.append(("long_memory_available_bytes", [], "gauge", 5e7))
    out.append(("long_up", [], "const", 0.0))
    res = []
    for name, extra, kind, step in out:
        labels = sorted([("__name__", name)] + base + extra)
        prefix = b"".join(pb_bytes(1, pb_bytes(1, k.encode()) + pb_bytes(2, v.encode()))
                          for k, v in labels)
        res.append((prefix, kind, step))
    return res


def gen_long(args, n_inst, end_ms, man):
    rng = random.Random(args.seed + 2)
    n_points = LONG_DAYS * DAY_MS // LONG_INTERVAL_MS
    start_ms = end_ms - (n_points - 1) * LONG_INTERVAL_MS
    series = [long_series(i) for i in range(n_inst)]
    state = [[(1.0 if kind == "const" else rng.uniform(1, 100) * step) for _, kind, step in ser]
             for ser in series]
    bw = BodyWriter(os.path.join(args.out, "long.rw1.bodies"), args.shards)
    # An instance's series always go to the same shard (connection), so each series
    # arrives in time order.
    bufs = [[] for _ in range(args.shards)]
    counts = [0] * args.shards
    total, resets = 0, 0
    pack_d = struct.Struct("<d").pack
    for h0 in range(0, n_points, LONG_POINTS_PER_SERIES_REQ):
        pts = range(h0, min(n_points, h0 + LONG_POINTS_PER_SERIES_REQ))
        for i in range(n_inst):
            reboot_at = h0 + rng.randrange(LONG_POINTS_PER_SERIES_REQ) if rng.random() < 0.02 else -1
            if reboot_at >= 0:
                resets += 1
            sh = i % args.shards
            for j, (prefix, kind, step) in enumerate(series[i]):
                v = state[i][j]
                smp = []
                for k in pts:
                    if kind == "counter":
                        v = 0.0 if k == reboot_at else round(v + rng.expovariate(1.0 / step), 2)
                    elif kind == "gauge":
                        v = abs(round(v + rng.gauss(0, step), 3))
                    ts = start_ms + k * LONG_INTERVAL_MS
                    body = b"\x09" + pack_d(v) + b"\x10" + varint(ts)
                    smp.append(b"\x12" + varint(len(body)) + body)
                state[i][j] = v
                ts_body = prefix + b"".join(smp)
                bufs[sh].append(b"\x0a" + varint(len(ts_body)) + ts_body)
                counts[sh] += len(pts)
                total += len(pts)
                if counts[sh] >= RW_SAMPLES_PER_REQ:
                    bw.add(sh, counts[sh], snappy.compress(b"".join(bufs[sh])))
                    bufs[sh], counts[sh] = [], 0
    for sh in range(args.shards):
        if counts[sh]:
            bw.add(sh, counts[sh], snappy.compress(b"".join(bufs[sh])))
    bw.close()
    man["long"] = {
        "file": "long.rw1.bodies", "protocol": "remote write 1.0 (snappy protobuf)",
        "instances": n_inst, "points_per_series": n_points, "interval_ms": LONG_INTERVAL_MS,
        "days": LONG_DAYS, "series": n_inst * len(series[0]), "samples": total,
        "requests": bw.n, "body_bytes": bw.bytes, "shards": args.shards,
        "start_ms": start_ms, "end_ms": end_ms, "reboots": resets,
        "check_metric": "long_load1", "check_samples": n_inst * n_points,
    }


# ---- cpu dataset (TSBS cpu-only) ----------------------------------------------------

REGIONS = [("us-east-1", ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"]),
           ("us-west-1", ["us-west-1a", "us-west-1b"]),
           ("us-west-2", ["us-west-2a", "us-west-2b", "us-west-2c"]),
           ("eu-west-1", ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
           ("eu-central-1", ["eu-central-1a", "eu-central-1b"]),
           ("ap-southeast-1", ["ap-southeast-1a", "ap-southeast-1b"]),
           ("ap-southeast-2", ["ap-southeast-2a", "ap-southeast-2b"]),
           ("ap-northeast-1", ["ap-northeast-1a", "ap-northeast-1c"]),
           ("sa-east-1", ["sa-east-1a", "sa-east-1b", "sa-east-1c"])]


def gen_cpu(args, n_hosts, n_points, end_ms, man):
    rng = random.Random(args.seed + 1)
    tags = []
    vals = []
    for h in range(n_hosts):
        reg, dcs = rng.choice(REGIONS)
        tags.append("cpu,hostname=host_%d,region=%s,datacenter=%s,rack=%d,os=%s,arch=%s,team=%s,"
                    "service=%d,service_version=%d,service_environment=%s " % (
                        h, reg, rng.choice(dcs), rng.randrange(100),
                        rng.choice(["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"]),
                        rng.choice(["x64", "x86"]), rng.choice(["SF", "NYC", "LON", "CHI"]),
                        rng.randrange(20), rng.randrange(2),
                        rng.choice(["production", "staging", "test"])))
        vals.append([rng.uniform(0, 100) for _ in CPU_FIELDS])
    start_ms = end_ms - (n_points - 1) * CPU_INTERVAL_MS - CPU_INTERVAL_MS
    n_shards = args.shards
    bw = BodyWriter(os.path.join(args.out, "cpu.lp.bodies"), n_shards)
    bufs = [[] for _ in range(n_shards)]
    total = 0
    uni = rng.uniform
    for k in range(n_points):
        ts = " %d\n" % (start_ms + k * CPU_INTERVAL_MS)
        for h in range(n_hosts):
            v = vals[h]
            parts = []
            for j, f in enumerate(CPU_FIELDS):
                x = v[j] + uni(-1, 1)
                x = 0.0 if x < 0 else 100.0 if x > 100 else x
                v[j] = x
                parts.append("%s=%di" % (f, int(x)))
            sh = h % n_shards
            bufs[sh].append(tags[h] + ",".join(parts) + ts)
            total += len(CPU_FIELDS)
            if len(bufs[sh]) >= LP_LINES_PER_REQ:
                bw.add(sh, len(bufs[sh]) * len(CPU_FIELDS), "".join(bufs[sh]).encode())
                bufs[sh] = []
    for sh in range(n_shards):
        if bufs[sh]:
            bw.add(sh, len(bufs[sh]) * len(CPU_FIELDS), "".join(bufs[sh]).encode())
    bw.close()
    man["cpu"] = {
        "file": "cpu.lp.bodies", "protocol": "InfluxDB line protocol (precision=ms)",
        "hosts": n_hosts, "points_per_host": n_points, "interval_ms": CPU_INTERVAL_MS,
        "series": n_hosts * len(CPU_FIELDS), "samples": total, "requests": bw.n,
        "body_bytes": bw.bytes, "shards": n_shards, "start_ms": start_ms,
        "end_ms": start_ms + (n_points - 1) * CPU_INTERVAL_MS + CPU_INTERVAL_MS,
        "check_metric": "cpu_usage_user", "check_samples": n_hosts * n_points,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--out", required=True)
    ap.add_argument("--end-ms", type=int, default=0, help="last timestamp (default: now - 2 min, "
                    "rounded down to the minute)")
    ap.add_argument("--end-days-ago", type=int, default=0, metavar="N",
                    help="end N days before that (same bodies, shifted back by N days)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--only", default="node,cpu")
    ap.add_argument("--seed-file", default=SEED_FILE)
    ap.add_argument("--scrape", help="scrape this node_exporter URL once and use it as the seed "
                    "(also rewrites --seed-file)")
    args = ap.parse_args()
    if args.scrape:
        text = urllib.request.urlopen(args.scrape, timeout=10).read().decode()
        with open(args.seed_file, "w") as f:
            f.write(text)
    if args.end_days_ago < 0:
        ap.error("--end-days-ago must be 0 or more")
    end_ms = (args.end_ms or (int(time.time()) // 60 * 60 - 120) * 1000) - args.end_days_ago * DAY_MS
    os.makedirs(args.out, exist_ok=True)
    n_inst, n_scrapes, n_hosts, n_points = SIZES[args.size]
    man = {"size": args.size, "seed": args.seed, "end_ms": end_ms, "end_days_ago": args.end_days_ago}
    only = args.only.split(",")
    t0 = time.time()
    if "node" in only:
        gen_node(args, n_inst, n_scrapes, end_ms, man)
    if "cpu" in only:
        gen_cpu(args, n_hosts, n_points, end_ms, man)
    if "long" in only:
        gen_long(args, LONG_SIZES[args.size], end_ms, man)
    man["gen_seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    json.dump(man, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
