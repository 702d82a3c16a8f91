"""Scale-out mode of run.py (--shards N, N > 1): N tsdbd shards against one tsdbd.

For each dataset (node, cpu) and repeat:

  1. the dataset's bodies are split over N shards by shardsplit.py (Prometheus' hashmod
     over [__name__, instance, job] for remote write; the hostname tag for line
     protocol), cached next to the dataset;
  2. N tsdbd shards start, each with `--external-label <label>=<i>` (--shard-label,
     default "shard") and `--grpc-listen 127.0.0.1:0` (its StoreAPI port is read from
     the log line "StoreAPI (gRPC) on ADDR, grpc port N"), and are fed in parallel, one
     benchsend each (--conns connections each);
  3. one single tsdbd (the same flags without the external label) starts and is fed
     everything, alone, after the shards are done;
  4. unless --disk-only: two query Prometheus servers (/usr/bin/prometheus, empty TSDB,
     no scrape targets) start, one with remote_read (read_recent: true) to all N shards,
     one with remote_read to the single tsdbd; the dataset's dashboard queries (the
     normal run's set) go through both, and their answers are compared (same label
     sets, values within relative 1e-6; absolute 1e-9 near zero);
  5. a clean stop (SIGTERM: tsdbd checkpoints) and the disk at rest.

Figures: total ingest samples/s (all acknowledged samples / wall time from the first
request of any shard to the last answer of any), server CPU-seconds per million samples
(utime+stime of all shards from before the first request to --settle after the last),
peak RSS (VmHWM after ingest and queries) summed over the shards, allocated disk summed
over the shards (while ingesting and at rest), and the dashboard p50/p99 through each
query Prometheus; each beside the single tsdbd's, with the ratio shards / single.
"""
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import shardsplit

SCALEOUT_DATASETS = ("node", "cpu")
STOREAPI_RE = re.compile(rb"StoreAPI \(gRPC\) on (\S+), grpc port (\d+)")
REL_TOL, ABS_TOL = 1e-6, 1e-9
TWO_CORES_NOTE = ("On a machine with %d CPU core%s the %d shards, their %d senders and the "
                  "query Prometheus share the same cores as the single tsdbd had to itself: "
                  "the throughput and CPU ratios show the overhead of running N shards, not "
                  "scaling; scaling needs a machine (or cores) per shard.")


# ---- servers ---------------------------------------------------------------------------

def tsdbd_class(b):
    class ShardTsdbd(b.Tsdbd):
        """tsdbd with the StoreAPI on a kernel-chosen port and, for a shard, an external
        label; info-level log (for the StoreAPI line; tsdbd logs nothing per request)."""

        def __init__(self, args, workdir, ext_label=None):
            super().__init__(args, workdir)
            self.ext = ext_label
            self.grpc = None

        def cmd(self):
            c = [self.args.tsdbd, "--data-dir", self.data, "--listen", "127.0.0.1:%d" % self.port,
                 "--log-level", "info", "--grpc-listen", "127.0.0.1:0"]
            if self.ext:
                c += ["--external-label", self.ext]
            return c + self.args.tsdbd_arg

        def storeapi(self, timeout=10):
            """"host:port" of the StoreAPI, from its log line in the current log."""
            t_end = time.monotonic() + timeout
            path = os.path.join(self.dir, "server.log")
            while time.monotonic() < t_end:
                with open(path, "rb") as f:
                    m = list(STOREAPI_RE.finditer(f.read()))
                if m:
                    # ADDR is the flag as given (port 0); the port is the one bound
                    host = m[-1].group(1).decode().rsplit(":", 1)[0]
                    self.grpc = "%s:%d" % (host, int(m[-1].group(2)))
                    return self.grpc
                time.sleep(0.05)
            raise RuntimeError("no StoreAPI log line in %s" % path)
    return ShardTsdbd


def reader_class(b):
    class ReaderProm(b.System):
        """A query Prometheus: empty TSDB, no scrape targets, remote_read to `ports`."""

        def __init__(self, args, workdir, ports, names):
            super().__init__(args, workdir)
            self.ports, self.names = ports, names

        def cmd(self):
            rr = "".join("  - url: http://127.0.0.1:%d/api/v1/read\n    name: %s\n"
                         "    read_recent: true\n    remote_timeout: 5m\n" % (p, n)
                         for p, n in zip(self.ports, self.names))
            cfg = self.write_config("prometheus.yml", "global:\n  scrape_interval: 1m\n"
                                    "  evaluation_interval: 1m\nscrape_configs: []\n"
                                    "remote_read:\n" + rr)
            return ["/usr/bin/prometheus", "--config.file=" + cfg,
                    "--storage.tsdb.path=" + self.data,
                    "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"]
    return ReaderProm


# ---- answers ---------------------------------------------------------------------------

def _close(a, b):
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= max(ABS_TOL, REL_TOL * max(abs(x), abs(y)))


def _series_map(result, drop):
    """{label set: value(s)}, and whether dropping `drop` merged label sets."""
    out, dup = {}, False
    for s in result:
        key = tuple(sorted((k, v) for k, v in s["metric"].items() if k != drop))
        if key in out:
            dup = True
        out[key] = s.get("values") or [s.get("value")]
    return out, dup


def compare(want, got, drop=None, limit=3):
    """None when the two Prometheus API envelopes hold the same answer within the float
    tolerance (with label `drop` removed from got's series, if given), else a text."""
    if want.get("status") != "success" or got.get("status") != "success":
        if want.get("status") == got.get("status") and want.get("errorType") == got.get("errorType"):
            return None
        return "status %s/%s vs %s/%s" % (want.get("status"), want.get("error"),
                                          got.get("status"), got.get("error"))
    wd, gd = want["data"], got["data"]
    if wd["resultType"] != gd["resultType"]:
        return "resultType %s vs %s" % (wd["resultType"], gd["resultType"])
    if wd["resultType"] in ("scalar", "string"):
        ok = wd["result"][0] == gd["result"][0] and _close(wd["result"][1], gd["result"][1])
        return None if ok else "%s vs %s" % (wd["result"], gd["result"])
    wm, _ = _series_map(wd["result"], None)
    gm, dup = _series_map(gd["result"], drop)
    diffs = []
    if dup:
        diffs.append("label sets equal once %s is removed" % drop)
    miss, extra = sorted(set(wm) - set(gm)), sorted(set(gm) - set(wm))
    if miss:
        diffs.append("%d of %d series missing, e.g. %s" % (len(miss), len(wm), dict(miss[0])))
    if extra:
        diffs.append("%d series extra, e.g. %s" % (len(extra), dict(extra[0])))
    bad = 0
    for k in set(wm) & set(gm):
        a = {p[0]: p[1] for p in wm[k]}
        c = {p[0]: p[1] for p in gm[k]}
        if set(a) != set(c) or not all(_close(a[t], c[t]) for t in a):
            bad += 1
            if bad == 1:
                t = next((t for t in sorted(set(a) | set(c)) if not _close(a.get(t), c.get(t))), None)
                diffs.append("values differ, e.g. %s at %s: %s vs %s" % (dict(k), t, a.get(t), c.get(t)))
    if bad > 1:
        diffs.append("%d series with differing values" % bad)
    return "; ".join(diffs[:limit]) if diffs else None


def identical(a, b):
    """True when both envelopes hold the same result text (series order aside)."""
    def canon(e):
        d = e.get("data") or {}
        r = d.get("result")
        if d.get("resultType") in ("vector", "matrix"):
            r = sorted(json.dumps(x, sort_keys=True) for x in r)
        return e.get("status"), d.get("resultType"), r
    return canon(a) == canon(b)


def _result_count(env):
    try:
        r = env["data"]["result"]
        return len(r) if env["data"]["resultType"] in ("vector", "matrix") else 1
    except (KeyError, TypeError):
        return None


def _get_json(h, path, params, timeout=600):
    st, body = h.req("GET", path + "?" + urllib.parse.urlencode(params), timeout=timeout)
    try:
        env = json.loads(body)
    except ValueError:
        env = {"status": "unparsable", "error": body[:200].decode(errors="replace")}
    env["_http"] = st
    return env


# ---- one run ---------------------------------------------------------------------------

def _feed(b, args, servers, files, dataset, hdrs_rw):
    """Starts one benchsend per (server, bodies file) at once; returns their JSON answers
    and the wall time from the start to the last one's end."""
    procs = []
    t0 = time.monotonic()
    for s, f in zip(servers, files):
        cmd = [args.benchsend, "--bodies", f, "--target", "127.0.0.1:%d" % s.port,
               "--path", s.write_path(dataset), "--conns", str(args.conns),
               "--max-seconds", str(args.max_seconds)]
        for x in ([] if dataset == "cpu" else hdrs_rw):
            cmd += ["--header", x]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE))
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=max(1.0, t0 + args.max_seconds + 60 - time.monotonic()))
            outs.append(json.loads(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs, time.monotonic() - t0


def _ingest(b, args, servers, files, dataset, man):
    """Feeds servers[i] with files[i] (all at once), measures; returns the figures."""
    m = man[dataset]
    pids = [s.proc.pid for s in servers]
    cpu0 = [b.proc_cpu_s(p) for p in pids]
    sends, wall = _feed(b, args, servers, files, dataset, b.RW_HEADERS)
    cpu_send = sum(b.proc_cpu_s(p) - c for p, c in zip(pids, cpu0))
    disk = [b.disk_bytes(s.data) for s in servers]
    time.sleep(args.settle)
    cpu = sum(b.proc_cpu_s(p) - c for p, c in zip(pids, cpu0))
    ok = sum(x["samples_ok"] for x in sends)
    return {
        "samples_sent": sum(x["samples"] for x in sends), "samples_ok": ok,
        "send_wall_s": wall, "samples_per_s": ok / wall if wall else 0,
        "per_server_samples_per_s": [x["samples_per_s"] for x in sends],
        "per_server_samples": [x["samples_ok"] for x in sends],
        "req_p50_ms": [x["lat_p50_ms"] for x in sends], "req_p99_ms": [x["lat_p99_ms"] for x in sends],
        "failed_requests": sum(x["failed"] for x in sends),
        "first_error": next((x["first_error"] for x in sends if x.get("first_error")), None),
        "truncated": any(x["truncated"] for x in sends),
        "sender_cpu_s": sum(x["sender_cpu_s"] for x in sends),
        "cpu_s": cpu, "cpu_s_during_send": cpu_send,
        "cpu_s_per_msample": cpu / (m["samples"] / 1e6),
        "server_cores_busy": cpu_send / wall if wall else 0,
        "ingest_disk_bytes": sum(d[0] for d in disk), "ingest_wal_bytes": sum(d[1] for d in disk),
        "per_server_ingest_disk_bytes": [d[0] for d in disk],
    }


def _start(b, s, h, what):
    s.start()
    if not b.wait_until(lambda: s.ready(h), 60):
        raise RuntimeError("%s did not become ready; see %s/server.log" % (what, s.dir))


def _query_pass(b, args, readers, single_h, dataset, man):
    """Dashboard queries through both readers: answers compared, latencies."""
    qs, _ = b.query_set(dataset, man)
    dash = [(label, path, p) for kind, label, path, p in qs if kind == "dashboard"]
    m = man[dataset]
    end = m["end_ms"] / 1000.0 + 1
    span = int((m["end_ms"] - m["start_ms"]) / 1000) + 600
    check = ("(check) sum(count_over_time(%s[%ds]))" % (m["check_metric"], span), "/api/v1/query",
             {"query": "sum(count_over_time(%s[%ds]))" % (m["check_metric"], span),
              "time": "%.3f" % end})
    lat = {"fanout": [], "single": [], "direct": []}
    per_query, checks = {}, []
    for label, path, p in dash + [check]:
        ans = {k: _get_json(h, path, p) for k, h in readers.items()}
        ans["direct"] = _get_json(single_h, path, p)
        strict = compare(ans["single"], ans["fanout"])
        loose = compare(ans["single"], ans["fanout"], drop=args.shard_label) if strict and args.shard_label else strict
        own = compare(ans["direct"], ans["single"])
        checks.append({"query": label, "fanout_vs_single": strict, "without_shard_label": loose,
                       "identical_text": identical(ans["single"], ans["fanout"]),
                       "single_reader_vs_tsdbd": own,
                       "series": {k: _result_count(v) for k, v in ans.items()},
                       "warnings": {k: v.get("warnings") for k, v in ans.items() if v.get("warnings")}})
        if label.startswith("(check)"):
            continue
        q = {}
        for k, h in list(readers.items()) + [("direct", single_h)]:
            mine = []
            url = path + "?" + urllib.parse.urlencode(p)
            for _ in range(args.query_reps):
                t = time.perf_counter()
                h.req("GET", url, timeout=600)
                mine.append((time.perf_counter() - t) * 1e3)
            lat[k] += mine
            q[k] = b.pctl(mine, 0.5)
        per_query[label] = q
    return {"dash_p50_ms": {k: b.pctl(v, 0.5) for k, v in lat.items()},
            "dash_p99_ms": {k: b.pctl(v, 0.99) for k, v in lat.items()},
            "per_query_p50_ms": per_query, "answers": checks}


def run_pair(b, args, dataset, man, dsdir, split):
    n = args.shards
    root = tempfile.mkdtemp(prefix="bench-scaleout-", dir=args.tmpdir)
    T = tsdbd_class(b)
    R = reader_class(b)
    shards, single, readers, hs = [], None, {}, []
    r = {"dataset": dataset, "shards": n}
    m = man[dataset]
    try:
        for i in range(n):
            d = os.path.join(root, "shard%d" % i)
            os.mkdir(d)
            shards.append(T(args, d, "%s=%d" % (args.shard_label, i) if args.shard_label else None))
        hs = [b.Http(s.port) for s in shards]
        for i, (s, h) in enumerate(zip(shards, hs)):
            _start(b, s, h, "shard %d" % i)
        r["storeapi"] = [s.storeapi() for s in shards]
        files = [os.path.join(dsdir, f) for f in split["files"]]
        r["sharded"] = _ingest(b, args, shards, files, dataset, man)
        r["sharded"]["stored"] = [b.check_count(s, h, dataset, man) for s, h in zip(shards, hs)]
        sys.stderr.write("  %d shards: %.0f samples/s, %.2f CPU-s/M\n" % (
            n, r["sharded"]["samples_per_s"], r["sharded"]["cpu_s_per_msample"]))

        d = os.path.join(root, "single")
        os.mkdir(d)
        single = T(args, d, None)
        sh = b.Http(single.port)
        hs.append(sh)
        _start(b, single, sh, "single tsdbd")
        r["single_storeapi"] = single.storeapi()
        r["single"] = _ingest(b, args, [single], [os.path.join(dsdir, m["file"])], dataset, man)
        r["single"]["stored"] = [b.check_count(single, sh, dataset, man)]
        sys.stderr.write("  single: %.0f samples/s, %.2f CPU-s/M\n" % (
            r["single"]["samples_per_s"], r["single"]["cpu_s_per_msample"]))
        r["expected"] = m["check_samples"]

        if not args.disk_only:
            for name, ports, names in (("fanout", [s.port for s in shards], ["shard%d" % i for i in range(n)]),
                                       ("single", [single.port], ["single"])):
                d = os.path.join(root, "reader-" + name)
                os.mkdir(d)
                rd = R(args, d, ports, names)
                readers[name] = rd
                rh = b.Http(rd.port)
                hs.append(rh)
                _start(b, rd, rh, "query Prometheus (%s)" % name)
                rd.h = rh
            t0 = time.monotonic()
            r["queries"] = _query_pass(b, args, {k: v.h for k, v in readers.items()}, sh, dataset, man)
            r["queries"]["seconds"] = time.monotonic() - t0
            r["reader_peak_rss_mib"] = {k: b.proc_status_kb(v.proc.pid, "VmHWM") / 1024.0
                                        for k, v in readers.items()}
        r["sharded"]["per_server_peak_rss_mib"] = [b.proc_status_kb(s.proc.pid, "VmHWM") / 1024.0
                                                   for s in shards]
        r["single"]["per_server_peak_rss_mib"] = [b.proc_status_kb(single.proc.pid, "VmHWM") / 1024.0]
        for k in readers.values():
            k.stop(signal.SIGTERM)
        for part, servers in (("sharded", shards), ("single", [single])):
            clean = [s.stop(signal.SIGTERM) for s in servers]
            disk = [b.disk_bytes(s.data) for s in servers]
            r[part].update(clean_stop=all(clean), disk_bytes=sum(d[0] for d in disk),
                           wal_bytes=sum(d[1] for d in disk),
                           per_server_disk_bytes=[d[0] for d in disk])
        for part in ("sharded", "single"):
            x = r[part]
            x["peak_rss_mib"] = sum(x["per_server_peak_rss_mib"])
            x["bytes_per_sample"] = x["disk_bytes"] / m["samples"]
            x["ingest_bytes_per_sample"] = x["ingest_disk_bytes"] / m["samples"]
            x["stored_total"] = sum(x["stored"])
    finally:
        for h in hs:
            h.close()
        for s in list(readers.values()) + shards + ([single] if single else []):
            s.stop(signal.SIGKILL)
            s.log.close()
        if args.keep:
            r["workdir"] = root
        else:
            shutil.rmtree(root, ignore_errors=True)
    return r


def run(b, args, man, dsdir, datasets):
    """The whole scale-out comparison; returns (splits, results)."""
    splits, results = {}, {ds: [] for ds in datasets}
    for ds in datasets:
        t0 = time.time()
        splits[ds] = shardsplit.split(os.path.join(dsdir, man[ds]["file"]), args.shards)
        sys.stderr.write("%s split over %d shards in %.1f s%s: samples %s\n" % (
            ds, args.shards, time.time() - t0, " (cached)" if splits[ds].get("cached") else "",
            splits[ds]["samples"]))
    for rep in range(args.repeat):
        for ds in datasets:
            sys.stderr.write("run %d/%d %s: %d shards, then the single tsdbd\n" % (
                rep + 1, args.repeat, ds, args.shards))
            results[ds].append(run_pair(b, args, ds, man, dsdir, splits[ds]))
    return splits, results


# ---- report ----------------------------------------------------------------------------

def _med(runs, f):
    v = [f(r) for r in runs]
    v = [x for x in v if x is not None]
    if not v:
        return None, 0
    med = statistics.median(v)
    return med, (max(v) - min(v)) / med if med else 0


# (label, getter of the shards' figure, getter of the single's, format)
ROWS = [
    ("ingest, samples/s (all acknowledged samples ÷ wall time)",
     lambda r: r["sharded"]["samples_per_s"], lambda r: r["single"]["samples_per_s"], "{:,.0f}"),
    ("server CPU-s per million samples",
     lambda r: r["sharded"]["cpu_s_per_msample"], lambda r: r["single"]["cpu_s_per_msample"], "{:.2f}"),
    ("server cores busy while sending",
     lambda r: r["sharded"]["server_cores_busy"], lambda r: r["single"]["server_cores_busy"], "{:.2f}"),
    ("sender CPU-s (benchsend, same cores)",
     lambda r: r["sharded"]["sender_cpu_s"], lambda r: r["single"]["sender_cpu_s"], "{:.1f}"),
    ("peak RSS, MiB (shards: sum)",
     lambda r: r["sharded"]["peak_rss_mib"], lambda r: r["single"]["peak_rss_mib"], "{:.0f}"),
    ("disk while ingesting, MiB (shards: sum)",
     lambda r: r["sharded"]["ingest_disk_bytes"] / 1048576.0,
     lambda r: r["single"]["ingest_disk_bytes"] / 1048576.0, "{:.1f}"),
    ("disk at rest (after a clean stop), MiB (shards: sum)",
     lambda r: r["sharded"]["disk_bytes"] / 1048576.0,
     lambda r: r["single"]["disk_bytes"] / 1048576.0, "{:.1f}"),
    ("dashboard queries p50 through a query Prometheus (remote_read), ms",
     lambda r: r.get("queries", {}).get("dash_p50_ms", {}).get("fanout"),
     lambda r: r.get("queries", {}).get("dash_p50_ms", {}).get("single"), "{:.1f}"),
    ("dashboard queries p99 through a query Prometheus (remote_read), ms",
     lambda r: r.get("queries", {}).get("dash_p99_ms", {}).get("fanout"),
     lambda r: r.get("queries", {}).get("dash_p99_ms", {}).get("single"), "{:.1f}"),
]


def _fmt(fmt, v, spread):
    return "n/a" if v is None else fmt.format(v) + (" ~" if spread > 0.25 else "")


def table(ds, runs, man, split, args):
    n = args["shards"]
    m = man[ds]
    lines = ["### %s: %s, %s series, %s samples: %d tsdbd shards vs one tsdbd" % (
        ds, m["protocol"], "{:,}".format(m["series"]), "{:,}".format(m["samples"]), n), ""]
    lines.append("| metric | %d shards | single tsdbd | shards ÷ single |" % n)
    lines.append("|---|---|---|---|")
    for label, fs, f1, fmt in ROWS:
        a, sa = _med(runs, fs)
        c, sc = _med(runs, f1)
        if a is None and c is None:
            continue
        ratio = "%.2f×" % (a / c) if a is not None and c else ""
        lines.append("| %s | %s | %s | %s |" % (label, _fmt(fmt, a, sa), _fmt(fmt, c, sc), ratio))
    r0 = runs[0]
    lines.append("")
    src = "hashmod over (%s)" % ", ".join(split["source_labels"])
    lines.append("Split: %s, modulus %d: samples per shard %s; series%s per shard %s." % (
        src, n, ", ".join("{:,}".format(x) for x in split["samples"]),
        "" if "series" in split else " keys (measurement + tags)",
        ", ".join("{:,}".format(x) for x in split.get("series", split.get("series_keys", [])))))
    st = [r["sharded"]["stored"] for r in runs]
    lines.append("Check metric `%s`: shards stored %s (sum %s), single %s, of %s sent." % (
        m["check_metric"], " / ".join(str(x) for x in st[0]), ", ".join(str(sum(x)) for x in st),
        ", ".join(str(r["single"]["stored_total"]) for r in runs), m["check_samples"]))
    lines.append("Per shard: ingest samples/s %s (each shard's own benchsend); peak RSS MiB %s; "
                 "disk at rest MiB %s. StoreAPI (gRPC) of the shards on %s." % (
                     ", ".join("{:,.0f}".format(x) for x in r0["sharded"]["per_server_samples_per_s"]),
                     ", ".join("%.0f" % x for x in r0["sharded"]["per_server_peak_rss_mib"]),
                     ", ".join("%.1f" % (x / 1048576.0) for x in r0["sharded"]["per_server_disk_bytes"]),
                     ", ".join(r0["storeapi"])))
    fails = ["%s: %s" % (k, r[k]["first_error"]) for r in runs for k in ("sharded", "single")
             if r[k]["failed_requests"]]
    if fails:
        lines.append("Failed write requests: " + "; ".join(fails[:4]))
    if "queries" in r0:
        lines += ["", _query_table(runs, n, args.get("shard_label"))]
    return "\n".join(lines)


def _query_table(runs, n, label):
    r0 = runs[0]
    q = r0["queries"]
    out = ["| dashboard query | via %d shards, p50 ms | via single, p50 ms | ratio | single tsdbd "
           "direct, p50 ms | series (shards / single) | answers |" % n, "|---|---|---|---|---|---|---|"]
    for a in q["answers"]:
        ql = a["query"]
        pq = [r["queries"]["per_query_p50_ms"].get(ql) for r in runs]
        pq = [x for x in pq if x]
        if pq:
            f = statistics.median(x["fanout"] for x in pq)
            s = statistics.median(x["single"] for x in pq)
            d = statistics.median(x["direct"] for x in pq)
            cells = ["%.1f" % f, "%.1f" % s, "%.2f×" % (f / s if s else 0), "%.1f" % d]
        else:
            cells = ["", "", "", ""]
        if not a["fanout_vs_single"]:
            verdict = "identical" if a.get("identical_text") else "equal within tolerance"
        elif not a["without_shard_label"]:
            verdict = "equal once the `%s` label is removed" % label
        else:
            verdict = "**differ**: " + a["without_shard_label"]
        if a["single_reader_vs_tsdbd"]:
            verdict += "; single reader vs tsdbd's own API differ: " + a["single_reader_vs_tsdbd"]
        if a["warnings"]:
            verdict += "; warnings: %s" % a["warnings"]
        out.append("| `%s` | %s | %s / %s | %s |" % (
            ql.replace("|", "\\|"), " | ".join(cells), a["series"].get("fanout"),
            a["series"].get("single"), verdict.replace("|", "\\|")))
    return "\n".join(out)


def summary(runs):
    """Counts over every run's answers: (identical text, equal within the tolerance but
    not identical, equal once the shard label is removed, differing, all)."""
    a = [x for r in runs for x in r.get("queries", {}).get("answers", [])]
    ident = sum(1 for x in a if not x["fanout_vs_single"] and x.get("identical_text"))
    tol = sum(1 for x in a if not x["fanout_vs_single"] and not x.get("identical_text"))
    loose = sum(1 for x in a if x["fanout_vs_single"] and not x["without_shard_label"])
    return ident, tol, loose, len(a) - ident - tol - loose, len(a)


def report(d, machine_line, versions):
    """The Markdown of a scale-out run (d: the --out JSON's content)."""
    a = d["args"]
    n = a["shards"]
    out = ["## Scale-out: %d tsdbd shards vs one tsdbd (%s, %s)" % (
        n, a["size"], "median of %d runs" % a["repeat"] if a["repeat"] > 1 else "one run"), ""]
    out.append("Machine: %s. Query side: %s." % (machine_line, ", ".join(versions) or "prometheus"))
    out.append("")
    cores = os.cpu_count() or 1
    out.append("**" + TWO_CORES_NOTE % (cores, "" if cores == 1 else "s", n, n) + "**")
    out.append("")
    for ds, runs in d["scaleout"].items():
        out.append(table(ds, runs, d["manifest"], d["splits"][ds], a))
        if runs and "queries" in runs[0]:
            i, t, l, x, tot = summary(runs)
            msg = ("Answers through the %d shards vs through the single tsdbd, %d evaluations "
                   "(the queries above%s): %d identical, %d equal within relative %g" % (
                       n, tot, ", in each of %d runs" % len(runs) if len(runs) > 1 else "",
                       i, t, REL_TOL))
            if a.get("shard_label"):
                msg += ", %d equal once the `%s` external label is removed" % (l, a["shard_label"])
            msg += ", **%d differ**." % x if x else ", none differ."
            out += ["", msg]
        out.append("")
    out.append("Setup: each shard is `tsdbd --data-dir D --listen 127.0.0.1:P --log-level info "
               "--grpc-listen 127.0.0.1:0%s`, the single tsdbd the same%s; every tsdbd is fed by "
               "its own benchsend with %d keep-alive connections (so the shards get %d in all, "
               "the single tsdbd %d), the shards all at once, the single one afterwards alone. "
               "%sServer CPU is utime + "
               "stime of the tsdbd processes from before the first request to %.0f s after the "
               "last. Query Prometheus: an empty TSDB, no scrape targets, one `remote_read` "
               "(`read_recent: true`) per shard, or one to the single tsdbd; every dashboard "
               "query once to compare answers, then %d times each for the latencies (pooled "
               "p50/p99). \"single tsdbd direct\" is the single tsdbd's own /api/v1/query(_range), "
               "for scale." % (
                   " --external-label %s=<i>" % a["shard_label"] if a.get("shard_label") else "",
                   " without the external label" if a.get("shard_label") else "",
                   a["conns"], n * a["conns"], a["conns"],
                   "One run only: ingest rates vary by tens of percent from run to run here "
                   "(%s), so read the ingest ratio with care; --repeat gives "
                   "medians. " % ("a second or two of sending at this size"
                                  if a["size"] in ("tiny", "small") else "a shared machine")
                   if a["repeat"] == 1 else "", a["settle"], a["query_reps"]))
    if a.get("disk_only"):
        out[-1] = out[-1].split(" Query Prometheus:")[0] + " --disk-only: no queries."
    if a.get("shard_label") and not a.get("disk_only"):
        out.append("")
        out.append("Remote read returns each shard's series with its external label "
                   "(`%s=\"<i>\"`), and Prometheus keeps it: series selected as they are carry "
                   "it, and a binary operation between two metrics that hashmod put on "
                   "different shards finds no match on all labels (see the answers column; "
                   "`--shard-label ''` runs the shards without it)." % a["shard_label"])
    skipped = [x for x in a["datasets"].split(",") if x not in SCALEOUT_DATASETS]
    if skipped:
        out.append("")
        out.append("Not in the scale-out mode: %s." % ", ".join(skipped))
    return "\n".join(out)
