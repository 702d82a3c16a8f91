#!/usr/bin/python3
"""Side-by-side benchmark: tsdbd against VictoriaMetrics, Prometheus and InfluxDB.

One command generates the datasets (gen.py), checks the sender's own ceiling, then for
each repeat, dataset and system: starts the system on 127.0.0.1 in a fresh temporary
directory, feeds it the same pre-encoded bodies with benchsend, and measures

  ingest samples/s and request latency          (benchsend)
  server CPU-seconds per million samples         (/proc/<pid>/stat utime+stime, from just
                                                  before the first request to 3 s after
                                                  the last, so work deferred by a few
                                                  seconds is counted)
  peak RSS and RSS per active series             (/proc/<pid>/status VmHWM at the end)
  that every sample is stored                    (count of one metric's samples)
  dashboard query and series/label look-up latency (p50/p99 over a fixed set)
  crash-recovery time                            (kill -9, restart, time until ready AND
                                                  the count check passes again)
  bytes per sample on disk while ingesting       (allocated bytes of the data directory
                                                  right after the last write is
                                                  acknowledged, before any flush or stop;
                                                  WAL share in the same cell)
  bytes per sample on disk at rest               (allocated bytes of the data directory
                                                  after each system's flush and a clean
                                                  stop; WAL share reported apart)
  index bytes per series at rest                 (tsdbd: index.mdb/, VictoriaMetrics:
                                                  indexdb/; tsdbd's wal/, index.mdb/ and
                                                  raw/ are printed apart under its table)

and prints Markdown tables of medians with tsdbd's ratio to each peer.

--end-days-ago N shifts the datasets so they end N days ago (tsdbd's at-rest figure then
describes closed partitions; Prometheus' is still WAL + head chunks).
--disk-only measures just the disk figures: ingest, measure, flush, stop, measure; no
queries, no crash recovery, no sender ceiling.
--datasets long adds a month of 60 s history and 28-day dashboards asked with
max_source_resolution=raw and =auto (tsdbd and VictoriaMetrics only).

--shards N (N > 1) is the scale-out mode (scaleout.py): instead of the side-by-side
run, N tsdbd shards fed with the datasets split the way Prometheus' hashmod relabelling
splits them (shardsplit.py), against one tsdbd holding everything, and the dashboard
queries through a query Prometheus remote-reading all shards against one remote-reading
the single tsdbd (node and cpu datasets; peers are not run).

Usage: run.py [--size tiny|small|medium|large|1m] [--repeat N] [--systems a,b,...]
              [--datasets node,cpu,long] [--build DIR] [--out FILE.json] [--keep]
              [--end-days-ago N] [--disk-only] [--shards N [--shard-label NAME]]
Only 127.0.0.1; every process it starts is stopped by its own PID.
"""
import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import scaleout

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SETTLE_S = 3.0
# Before kill -9 every system gets this long after its last acknowledged write:
# VictoriaMetrics 1.79 keeps the newest data in in-memory parts for up to about 5 s and
# loses them on kill -9 by design; the others log every acknowledged write first.
PRE_CRASH_WAIT_S = 10.0  # --pre-crash-wait
NAMES = {"tsdbd": "tsdbd", "victoriametrics": "VictoriaMetrics", "prometheus": "Prometheus",
         "influxdb": "InfluxDB"}

# Which systems take which dataset: InfluxDB does not accept remote write, Prometheus
# does not accept line protocol.
DATASET_SYSTEMS = {"node": ["tsdbd", "victoriametrics", "prometheus"],
                   "cpu": ["tsdbd", "victoriametrics", "influxdb"],
                   # a month of backfill: Prometheus' head refuses samples that old
                   "long": ["tsdbd", "victoriametrics"]}

RW_HEADERS = ["Content-Encoding: snappy", "Content-Type: application/x-protobuf",
              "X-Prometheus-Remote-Write-Version: 0.1.0"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def disk_bytes(path):
    """Allocated bytes (du), and the part under directories named wal."""
    total = wal = 0
    for dirpath, _, files in os.walk(path):
        in_wal = "/wal" in dirpath[len(path):] or dirpath.endswith("/wal")
        for fn in files:
            try:
                st = os.lstat(os.path.join(dirpath, fn))
            except FileNotFoundError:
                continue
            b = st.st_blocks * 512
            total += b
            if in_wal or fn.startswith("wal") or fn.endswith(".wal"):
                wal += b
    return total, wal


TSDBD_PARTITION_RE = re.compile(r"^-?[0-9]+_-?[0-9]+$")  # raw/<start_ms>_<end_ms>


def tsdbd_breakdown(data):
    """Allocated bytes of tsdbd's wal/, index.mdb/, raw/ (partitions) and anything else,
    and the number of partition directories under raw/ (tsdb/format.h's layout)."""
    total, _ = disk_bytes(data)
    out = {"wal": disk_bytes(os.path.join(data, "wal"))[0],
           "index": disk_bytes(os.path.join(data, "index.mdb"))[0],
           "raw": disk_bytes(os.path.join(data, "raw"))[0]}
    out["other"] = total - out["wal"] - out["index"] - out["raw"]
    try:
        names = os.listdir(os.path.join(data, "raw"))
    except FileNotFoundError:
        names = []
    out["partitions"] = sum(1 for n in names if TSDBD_PARTITION_RE.match(n)
                            and os.path.isdir(os.path.join(data, "raw", n)))
    out["transient"] = sum(1 for n in names if not TSDBD_PARTITION_RE.match(n))  # .compact, .old
    # index.mdb's live bytes: every page up to the last one used minus the pages LMDB's
    # free list names and the list's own pages (storage/env.c ts_env_live_bytes does the
    # same). mdb_stat's per-table figures count a table's main tree only, never the
    # sub-databases of its DUPSORT keys, so they cannot add up to this.
    out["index_live"] = 0
    if os.access("/usr/bin/mdb_stat", os.X_OK):
        try:
            p = subprocess.run(["/usr/bin/mdb_stat", "-ef", os.path.join(data, "index.mdb")],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
            f = {}
            for line in p.stdout.decode(errors="replace").splitlines():
                k, _, v = line.strip().partition(":")
                if k == "Status of Main DB":
                    break
                if v.strip().isdigit():
                    f[k] = int(v)
            out["index_live"] = (f["Number of pages used"] - f["Free pages"] - f["Branch pages"]
                                 - f["Leaf pages"] - f["Overflow pages"]) * f["Page size"]
        except (OSError, subprocess.TimeoutExpired, KeyError):
            pass
    return out


def lmdb_tables_in_use(env_dir):
    """{table: bytes in use (pages x page size)} of an LMDB env, by mdb_stat (Debian's
    lmdb-utils); {} when it is not installed or fails."""
    if not os.access("/usr/bin/mdb_stat", os.X_OK):
        return {}
    try:
        p = subprocess.run(["/usr/bin/mdb_stat", "-a", "-e", env_dir], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if p.returncode:
        return {}
    page, table, out = 4096, None, {}
    for line in p.stdout.decode(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("Page size:"):
            page = int(line.split(":")[1])
        elif line.startswith("Status of "):
            table = line[len("Status of "):]
            out[table] = 0
        elif table and line.split(":")[0] in ("Branch pages", "Leaf pages", "Overflow pages"):
            out[table] += int(line.split(":")[1]) * page
    out.pop("Main DB", None)
    return out


def tsdbd_head_samples(tsdbctl, data):
    """Samples held in head snapshots (open chunks at the last checkpoint), by
    `tsdbctl inspect --json`; None when unavailable."""
    if not os.access(tsdbctl, os.X_OK):
        return None
    try:
        p = subprocess.run([tsdbctl, "inspect", "--data-dir", data, "--json", "--top", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        return int(json.loads(p.stdout)["head_snapshots"]["samples"]) if p.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return None


def victoria_breakdown(data):
    """Allocated bytes of VictoriaMetrics' data/ (samples), indexdb/, cache/ (caches it
    persists on stop, rebuilt when absent) and anything else."""
    total, _ = disk_bytes(data)
    out = {k: disk_bytes(os.path.join(data, k))[0] for k in ("data", "indexdb", "cache")}
    out["other"] = total - sum(out.values())
    return out


class Http:
    """A keep-alive HTTP/1.1 client for one system."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def req(self, method, path, body=None, timeout=60):
        for attempt in range(2):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
                hdr = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
                self.c.request(method, path, body=body, headers=hdr)
                r = self.c.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                if self.c:
                    self.c.close()
                self.c = None
                if attempt:
                    raise
        return 0, b""

    def close(self):
        if self.c:
            self.c.close()
            self.c = None


# ---- the systems --------------------------------------------------------------------

class System:
    promql = True
    ready_path = "/-/ready"
    flags_doc = ""
    index_dir = None  # the series index under the data directory, if it is one apart

    def __init__(self, args, workdir):
        self.args = args
        self.dir = workdir
        self.data = os.path.join(workdir, "data")
        self.port = free_port()
        self.proc = None
        self.log = open(os.path.join(workdir, "server.log"), "ab")

    def cmd(self):
        raise NotImplementedError

    def start(self):
        self.proc = subprocess.Popen(self.cmd(), stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.dir, start_new_session=True)
        return self.proc.pid

    def ready(self, h):
        try:
            st, _ = h.req("GET", self.ready_path, timeout=2)
            return 200 <= st < 300
        except OSError:
            return False

    def prepare(self, h):
        pass

    def flush(self, h):
        pass

    def stop(self, sig=signal.SIGTERM, timeout=120):
        if not self.proc or self.proc.poll() is not None:
            return True
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return False

    def write_config(self, name, text):
        """Writes text to the file `name` in the run directory; returns its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def write_path(self, dataset):
        return "/write?db=bench&precision=ms" if dataset == "cpu" else "/api/v1/write"

    def query_params(self):
        return {}


class Tsdbd(System):
    index_dir = "index.mdb"
    flags_doc = ("`--data-dir D --listen 127.0.0.1:P`; everything else default "
                 "(sync=always: fdatasync before every acknowledgement, 4 workers)")

    def cmd(self):
        return [self.args.tsdbd, "--data-dir", self.data, "--listen", "127.0.0.1:%d" % self.port,
                "--log-level", "warn"] + self.args.tsdbd_arg


class Victoria(System):
    ready_path = "/health"
    index_dir = "indexdb"
    flags_doc = ("`-storageDataPath=D -httpListenAddr=127.0.0.1:P`; defaults otherwise "
                 "(retention 1 month). Queries carry `nocache=1` so the rollup result cache "
                 "does not answer repeated queries; flush is `/internal/force_flush`")

    def cmd(self):
        return ["/usr/bin/victoria-metrics", "-storageDataPath=" + self.data,
                "-httpListenAddr=127.0.0.1:%d" % self.port, "-loggerLevel=WARN"]

    def flush(self, h):
        h.req("GET", "/internal/force_flush")

    def query_params(self):
        return {"nocache": "1"}


class Prometheus(System):
    flags_doc = ("`--config.file` (empty scrape list) `--storage.tsdb.path=D "
                 "--web.listen-address=127.0.0.1:P --web.enable-remote-write-receiver`; "
                 "defaults otherwise (15 d retention, 2 h blocks). The head is not compacted "
                 "within a run, so its disk figure is WAL + head chunks")

    def cmd(self):
        cfg = self.write_config("prometheus.yml",
                                "global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        return ["/usr/bin/prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + self.data,
                "--web.listen-address=127.0.0.1:%d" % self.port,
                "--web.enable-remote-write-receiver", "--log.level=warn"]


class Influx(System):
    promql = False
    ready_path = "/ping"
    flags_doc = ("generated config: HTTP and RPC on 127.0.0.1, meta/data/wal under D, "
                 "`reporting-disabled`, `[monitor] store-enabled = false` (else it writes its "
                 "own _internal database into the measured directory), HTTP access log and "
                 "query log off; defaults otherwise (index inmem, wal-fsync-delay 0s, cache "
                 "snapshot after 25 MB or 10 min cold: below 25 MB of data the disk figure is mostly WAL)")

    def cmd(self):
        cfg = self.write_config(
            "influxdb.conf",
            'reporting-disabled = true\nbind-address = "127.0.0.1:%d"\n'
            '[meta]\n  dir = "%s/meta"\n'
            '[data]\n  dir = "%s/data"\n  wal-dir = "%s/wal"\n  query-log-enabled = false\n'
            '[monitor]\n  store-enabled = false\n'
            '[http]\n  enabled = true\n  bind-address = "127.0.0.1:%d"\n  log-enabled = false\n'
            % (free_port(), self.data, self.data, self.data, self.port))
        return ["/usr/bin/influxd", "run", "-config", cfg]

    def prepare(self, h):
        st, body = h.req("POST", "/query", body="q=CREATE+DATABASE+bench")
        if st != 200:
            raise RuntimeError("influxd: CREATE DATABASE: %d %r" % (st, body[:200]))


SYSTEMS = {"tsdbd": Tsdbd, "victoriametrics": Victoria, "prometheus": Prometheus,
           "influxdb": Influx}


# ---- query sets ---------------------------------------------------------------------

def lookups(rng, series_matches, label):
    """The lookup requests both datasets make over rng: /series for each match, the label
    names, and the values of `label` and of __name__."""
    look = [("/api/v1/series", dict(rng, **{"match[]": m})) for m in series_matches]
    look.append(("/api/v1/labels", dict(rng)))
    for name in (label, "__name__"):
        look.append(("/api/v1/label/%s/values" % name, dict(rng)))
    return look


def query_set(dataset, man):
    """[(kind, label, path, params)] with kind dashboard|lookup."""
    m = man[dataset]
    start, end = m["start_ms"] / 1000.0, m["end_ms"] / 1000.0 + 1
    rng = {"start": "%.3f" % start, "end": "%.3f" % end}
    span_s = int(end - start) + 300
    if dataset == "node":
        r = dict(rng, step="15")
        dash = [
            ("sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m]))", r),
            ("rate(node_network_receive_bytes_total[5m])", r),
            ("avg_over_time(node_load1[5m])", r),
            ("sum by (mode) (rate(node_cpu_seconds_total{instance=~\"host-000.*\"}[5m]))", r),
            ("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", r),
            ("topk(5, max by (instance) (rate(node_disk_read_bytes_total[5m])))", r),
            ("count by (job) ({__name__=~\"node_network_.*\"})", {"time": "%.3f" % end}),
            ("node_filesystem_avail_bytes{fstype!~\"tmpfs|overlay\"}", {"time": "%.3f" % end}),
        ]
        look = lookups(rng, ['node_cpu_seconds_total{instance="host-0001:9100"}',
                             '{instance="host-0002:9100"}'], "instance")
        look.append(("/api/v1/label/mode/values", dict(rng, **{"match[]": "node_cpu_seconds_total"})))
    elif dataset == "long":
        # Dashboards over the last 28 days at steps of 1 h and 6 h, each asked twice: with
        # max_source_resolution=raw and =auto (Thanos' parameter; systems without
        # downsampled tiers answer both from raw data).
        end28 = {"start": "%.3f" % (end - 28 * 86400), "end": "%.3f" % end}
        r1h, r6h = dict(end28, step="3600"), dict(end28, step="21600")
        base = [
            ("sum by (mode) (rate(long_cpu_seconds_total[1h]))", r1h),
            ("sum(rate(long_http_requests_total[1h]))", r1h),
            ("avg_over_time(long_load1[6h])", r6h),
            ("max by (instance) (max_over_time(long_memory_available_bytes[6h]))", r6h),
            ("sum(increase(long_network_receive_bytes_total[6h]))", r6h),
            ("sum(count_over_time(long_up[6h]))", r6h),
        ]
        dash = [(q, dict(p, max_source_resolution=res)) for res in ("raw", "auto") for q, p in base]
        look = lookups(rng, ['long_load1{instance="host-0001:9100"}', '{instance="host-0000:9100"}'],
                       "instance")
    else:
        r60 = dict(rng, step="60")
        r300 = dict(rng, step="300")
        dash = [  # TSBS cpu-only query kinds, in PromQL
            ("max by (hostname) (max_over_time(cpu_usage_user{hostname=\"host_1\"}[1m]))", r60),
            ("max by (hostname) ({__name__=~\"cpu_usage_(user|system|idle|nice|iowait)\","
             "hostname=\"host_2\"})", r60),
            ("max by (hostname) (max_over_time(cpu_usage_user{hostname=~\"host_(1|2|3|4|5|6|7|8)\"}[5m]))", r300),
            ("avg by (hostname) (avg_over_time(cpu_usage_user[5m]))", r300),
            ("cpu_usage_user > 90", {"time": "%.3f" % end}),
            ("cpu_usage_user", {"time": "%.3f" % end}),
            ("topk(5, max by (hostname) (max_over_time(cpu_usage_user[5m])))", {"time": "%.3f" % end}),
        ]
        look = lookups(rng, ['cpu_usage_user{hostname="host_7"}', '{hostname="host_8"}'], "hostname")
    out = []
    for q, p in dash:
        path = "/api/v1/query_range" if "step" in p else "/api/v1/query"
        label = q + (" [%s]" % p["max_source_resolution"] if "max_source_resolution" in p else "")
        out.append(("dashboard", label, path, dict(p, query=q)))
    for path, p in look:
        out.append(("lookup", path + " " + p.get("match[]", ""), path, p))
    return out, span_s


def check_count(sysobj, h, dataset, man):
    """Number of stored samples of the check metric (None if unknown)."""
    m = man[dataset]
    end = m["end_ms"] / 1000.0 + 1
    span = int((m["end_ms"] - m["start_ms"]) / 1000) + 600
    try:
        if sysobj.promql:
            q = {"query": "sum(count_over_time(%s[%ds]))" % (m["check_metric"], span),
                 "time": "%.3f" % end}
            q.update(sysobj.query_params())
            st, body = h.req("GET", "/api/v1/query?" + urllib.parse.urlencode(q), timeout=10)
            res = json.loads(body)["data"]["result"] if st == 200 else []
            return int(float(res[0]["value"][1])) if res else 0
        q = {"db": "bench", "q": "SELECT count(usage_user) FROM cpu"}
        st, body = h.req("GET", "/query?" + urllib.parse.urlencode(q), timeout=10)
        if st != 200:
            return 0
        series = json.loads(body)["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0
    except (OSError, ValueError, KeyError, IndexError, http.client.HTTPException):
        return 0


def result_size(body):
    try:
        d = json.loads(body)
        if d.get("status") != "success":
            return None
        data = d["data"]
        if isinstance(data, dict):
            data = data.get("result", [])
        return len(data) if isinstance(data, list) else 1
    except ValueError:
        return None


def run_queries(sysobj, h, dataset, man, reps):
    qs, _ = query_set(dataset, man)
    lat = {"dashboard": [], "lookup": []}
    sizes, errors, per_query = {}, 0, {}
    for kind, label, path, params in qs:
        p = dict(params)
        p.update(sysobj.query_params())
        url = path + "?" + urllib.parse.urlencode(p)
        st, body = h.req("GET", url)  # warm-up; its answer is the one compared across systems
        sizes[label] = result_size(body) if st == 200 else None
        if st != 200:
            errors += 1
            sys.stderr.write("  query failed (%d): %s: %s\n" % (st, label, body[:200]))
            continue
        mine = []
        for _ in range(reps):
            t = time.perf_counter()
            st, body = h.req("GET", url)
            mine.append((time.perf_counter() - t) * 1e3)
            if st != 200:
                errors += 1
        lat[kind] += mine
        per_query[label] = pctl(mine, 0.5)
    return lat, sizes, errors, per_query


def pctl(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def wait_until(fn, timeout):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if fn():
            return True
        time.sleep(0.05)
    return False


def run_one(args, name, dataset, man, dsdir):
    workdir = tempfile.mkdtemp(prefix="bench-%s-" % name, dir=args.tmpdir)
    s = SYSTEMS[name](args, workdir)
    h = Http(s.port)
    r = {"system": name, "dataset": dataset}
    m = man[dataset]
    try:
        t0 = time.monotonic()
        pid = s.start()
        if not wait_until(lambda: s.ready(h), 60):
            raise RuntimeError("%s did not become ready; see %s/server.log" % (name, workdir))
        r["startup_s"] = time.monotonic() - t0
        s.prepare(h)
        cpu0 = proc_cpu_s(pid)
        hdrs = [] if dataset == "cpu" else RW_HEADERS
        cmd = [args.benchsend, "--bodies", os.path.join(dsdir, m["file"]),
               "--target", "127.0.0.1:%d" % s.port, "--path", s.write_path(dataset),
               "--conns", str(args.conns), "--max-seconds", str(args.max_seconds)]
        for x in hdrs:
            cmd += ["--header", x]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=args.max_seconds + 60)
        send = json.loads(out.stdout)
        cpu_send = proc_cpu_s(pid) - cpu0
        t_sent = time.monotonic()
        # Disk while ingesting: as the data directory is right after the last
        # acknowledgement, before any flush or stop (tsdbd: WAL + partitions + index).
        total, wal = disk_bytes(s.data)
        r.update(ingest_disk_bytes=total, ingest_wal_bytes=wal,
                 ingest_bytes_per_sample=total / m["samples"],
                 ingest_wal_share=wal / total if total else 0)
        if name == "tsdbd":
            r["ingest_breakdown"] = tsdbd_breakdown(s.data)
        time.sleep(args.settle)
        cpu_ingest = proc_cpu_s(pid) - cpu0
        r.update(samples_per_s=send["samples_per_s"], req_p50_ms=send["lat_p50_ms"],
                 req_p99_ms=send["lat_p99_ms"], failed_requests=send["failed"],
                 first_error=send["first_error"], sender_cpu_s=send["sender_cpu_s"],
                 send_seconds=send["seconds"], truncated=send["truncated"],
                 cpu_s_per_msample=cpu_ingest / (m["samples"] / 1e6),
                 cpu_s_per_msample_during_send=cpu_send / (m["samples"] / 1e6),
                 server_cores_busy=cpu_send / send["seconds"] if send["seconds"] else 0,
                 rss_after_ingest_mib=proc_status_kb(pid, "VmRSS") / 1024.0)
        s.flush(h)
        r["stored"] = check_count(s, h, dataset, man)
        r["expected"] = m["check_samples"]
        if s.promql and not args.disk_only:
            lat, sizes, qerr, per_query = run_queries(s, h, dataset, man, args.query_reps)
            r.update(dash_p50_ms=pctl(lat["dashboard"], 0.5), dash_p99_ms=pctl(lat["dashboard"], 0.99),
                     lookup_p50_ms=pctl(lat["lookup"], 0.5), lookup_p99_ms=pctl(lat["lookup"], 0.99),
                     query_errors=qerr, result_sizes=sizes, per_query_p50_ms=per_query)
        hwm = proc_status_kb(pid, "VmHWM")
        r["peak_rss_mib"] = hwm / 1024.0
        r["rss_bytes_per_series"] = hwm * 1024.0 / m["series"]
        if not args.disk_only:
            # Crash: kill -9 with the WAL full of everything above, restart, wait until
            # ready and the data answers again.
            time.sleep(max(0.0, t_sent + args.pre_crash_wait - time.monotonic()))
            s.stop(signal.SIGKILL)
            h.close()
            t0 = time.monotonic()
            pid = s.start()
            ok = wait_until(lambda: s.ready(h), args.recovery_timeout)
            r["ready_after_crash_s"] = time.monotonic() - t0 if ok else None
            # Data back: the check count reaches what was stored before the crash. A
            # system that lost data is given 15 s more, then reported as not recovered.
            want = r["stored"] if r["stored"] else m["check_samples"]
            ok = ok and wait_until(lambda: check_count(s, h, dataset, man) >= want, 15)
            r["recovery_s"] = time.monotonic() - t0 if ok else None
            r["recovered"] = check_count(s, h, dataset, man)
            s.flush(h)
        h.close()
        r["clean_stop"] = s.stop(signal.SIGTERM)
        if name == "tsdbd" and dataset == "long":
            # A long-term store at rest has its closed partitions cold and downsampled;
            # the background pass takes a while after a bulk import, so settle it the
            # documented offline way (timed) before measuring disk and queries at rest.
            t0 = time.monotonic()
            subprocess.run([args.tsdbctl, "downsample", "--data-dir", s.data], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
            r["settle_s"] = time.monotonic() - t0
        # At rest: after the flush and a clean stop.
        total, wal = disk_bytes(s.data)
        r.update(disk_bytes=total, wal_bytes=wal, bytes_per_sample=total / m["samples"],
                 wal_share=wal / total if total else 0)
        if s.index_dir:
            ib = disk_bytes(os.path.join(s.data, s.index_dir))[0]
            r.update(index_bytes=ib, index_bytes_per_series=ib / m["series"])
        if name == "tsdbd":
            r["rest_breakdown"] = tsdbd_breakdown(s.data)
            r["index_tables_in_use"] = lmdb_tables_in_use(os.path.join(s.data, "index.mdb"))
            r["head_snapshot_samples"] = tsdbd_head_samples(args.tsdbctl, s.data)
        elif name == "victoriametrics":
            r["rest_breakdown"] = victoria_breakdown(s.data)
        if s.promql and not args.disk_only:
            # The same queries once more after a restart: every system answers from
            # the form its data takes at rest (tsdbd: cold blocks; VictoriaMetrics:
            # merged parts) instead of what ingest just wrote.
            pid = s.start()
            if not wait_until(lambda: s.ready(h), 60):
                raise RuntimeError("%s did not restart; see %s/server.log" % (name, workdir))
            lat, sizes, qerr, per_query = run_queries(s, h, dataset, man, args.query_reps)
            r.update(rest_dash_p50_ms=pctl(lat["dashboard"], 0.5),
                     rest_dash_p99_ms=pctl(lat["dashboard"], 0.99),
                     rest_lookup_p50_ms=pctl(lat["lookup"], 0.5),
                     rest_query_errors=qerr, rest_result_sizes=sizes,
                     rest_per_query_p50_ms=per_query)
            h.close()
            s.stop(signal.SIGTERM)
    finally:
        h.close()
        s.stop(signal.SIGKILL)
        s.log.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            r["workdir"] = workdir
    return r


# ---- report -------------------------------------------------------------------------

# (key, label, higher_is_better, format)
ROWS = [
    ("samples_per_s", "ingest, samples/s", True, "{:,.0f}"),
    ("cpu_s_per_msample", "server CPU-s per million samples", False, "{:.2f}"),
    ("req_p50_ms", "write request p50, ms", False, "{:.1f}"),
    ("req_p99_ms", "write request p99, ms", False, "{:.1f}"),
    ("ingest_bytes_per_sample", "disk while ingesting, bytes/sample (WAL share)", False, "{:.2f}"),
    ("bytes_per_sample", "disk, bytes/sample (after flush + clean stop)", False, "{:.2f}"),
    ("wal_share", "  of which WAL", None, "{:.0%}"),
    ("index_bytes_per_series", "index at rest, bytes/series", False, "{:,.0f}"),
    ("peak_rss_mib", "peak RSS, MiB", False, "{:.0f}"),
    ("rss_bytes_per_series", "peak RSS per active series, bytes", False, "{:,.0f}"),
    ("recovery_s", "recovery after kill -9, s (ready + data back)", False, "{:.2f}"),
    ("dash_p50_ms", "dashboard queries p50, ms", False, "{:.1f}"),
    ("dash_p99_ms", "dashboard queries p99, ms", False, "{:.1f}"),
    ("lookup_p50_ms", "series/label look-ups p50, ms", False, "{:.2f}"),
    ("lookup_p99_ms", "series/label look-ups p99, ms", False, "{:.2f}"),
    ("rest_dash_p50_ms", "dashboard queries p50 after a restart (data at rest), ms", False, "{:.1f}"),
    ("rest_dash_p99_ms", "dashboard queries p99 after a restart (data at rest), ms", False, "{:.1f}"),
    ("rest_lookup_p50_ms", "series/label look-ups p50 after a restart, ms", False, "{:.2f}"),
]
NOISY_SPREAD = 0.25
# A share shown in the same cell as the row's figure, in parentheses.
ROW_SHARE = {"ingest_bytes_per_sample": ("ingest_wal_share", "{:.0%}")}
# Rows --disk-only does not measure.
NOT_DISK_ONLY = {"recovery_s", "dash_p50_ms", "dash_p99_ms", "lookup_p50_ms", "lookup_p99_ms",
                 "rest_dash_p50_ms", "rest_dash_p99_ms", "rest_lookup_p50_ms"}


def median_of(runs, key):
    v = [r[key] for r in runs if r.get(key) is not None]
    if not v:
        return None, None
    med = statistics.median(v)
    spread = (max(v) - min(v)) / med if med else 0
    return med, spread


def fmt_bytes(n):
    return "{:,.0f} bytes ({:.1f} MiB)".format(n, n / 1048576.0)


def median_breakdown(runs):
    bds = [r["rest_breakdown"] for r in runs if r.get("rest_breakdown")]
    if not bds:
        return None, 0
    return {k: statistics.median(b.get(k, 0) for b in bds) for k in bds[0]}, len(bds)


def victoria_breakdown_line(runs, m):
    med, n = median_breakdown(runs)
    if not med:
        return None
    return ("VictoriaMetrics at rest%s: data/ %s (%.2f bytes/sample); indexdb/ %s; cache/ %s; "
            "other %s." % (", median of %d runs" % n if n > 1 else "", fmt_bytes(med["data"]),
                           med["data"] / m["samples"], fmt_bytes(med["indexdb"]),
                           fmt_bytes(med["cache"]), fmt_bytes(med["other"])))


def tsdbd_breakdown_line(runs, m):
    """tsdbd's data directory at rest, part by part (medians over runs)."""
    med, n = median_breakdown(runs)
    if not med:
        return None
    line = ("tsdbd at rest%s: wal/ %s; index.mdb/ %s (%.0f bytes/series); "
            "raw/ %s (%.2f bytes/sample) in %g partition director%s" % (
                ", median of %d runs" % n if n > 1 else "",
                fmt_bytes(med["wal"]), fmt_bytes(med["index"]), med["index"] / m["series"],
                fmt_bytes(med["raw"]), med["raw"] / m["samples"], med["partitions"],
                "y" if med["partitions"] == 1 else "ies"))
    if med.get("other"):
        line += "; other files %s" % fmt_bytes(med["other"])
    if med.get("transient"):
        line += "; %g transient compaction entries in raw/" % med["transient"]
    line += "."
    if med.get("index_live"):
        line += (" index.mdb live pages (all but LMDB's free list): %s (%.0f bytes/series)."
                 % (fmt_bytes(med["index_live"]), med["index_live"] / m["series"]))
    tabs = [r["index_tables_in_use"] for r in runs if r.get("index_tables_in_use")]
    if tabs:
        names = sorted(tabs[0], key=lambda k: -tabs[0][k])
        line += (" index.mdb tables, main tree pages only (mdb_stat; sub-databases of "
                 "DUPSORT keys not counted): ") + ", ".join(
            "%s %s" % (k, "{:,.0f}".format(statistics.median(t.get(k, 0) for t in tabs)))
            for k in names) + " bytes."
    hs = [r["head_snapshot_samples"] for r in runs if r.get("head_snapshot_samples") is not None]
    if hs:
        line += (" Samples in head snapshots (open chunks, stored in index.mdb's heads table): "
                 "{:,.0f} of {:,} ({:.0%}).".format(statistics.median(hs), m["samples"],
                                                     statistics.median(hs) / m["samples"]))
    return line


def table(dataset, results, man, disk_only=False):
    systems = [s for s in DATASET_SYSTEMS[dataset] if s in results]
    peers = [s for s in systems if s != "tsdbd"]
    m = man[dataset]
    lines = ["### %s: %s, %s series, %s samples" % (
        dataset, m["protocol"], "{:,}".format(m["series"]), "{:,}".format(m["samples"])), ""]
    head = ["metric"] + [NAMES[s] for s in systems]
    if "tsdbd" in systems:
        head += ["tsdbd vs %s" % NAMES[p] for p in peers]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key, label, hib, fmt in ROWS:
        if disk_only and key in NOT_DISK_ONLY:
            continue
        meds = {}
        cells = [label]
        for s in systems:
            med, spread = median_of(results[s], key)
            meds[s] = med
            if med is None:
                cells.append("n/a")
            else:
                cell = fmt.format(med) + (" ~" if spread > NOISY_SPREAD else "")
                if key in ROW_SHARE:
                    share, _ = median_of(results[s], ROW_SHARE[key][0])
                    if share is not None:
                        cell += " (" + ROW_SHARE[key][1].format(share) + ")"
                cells.append(cell)
        if "tsdbd" in systems:
            for p in peers:
                a, b = meds.get("tsdbd"), meds.get(p)
                if hib is None or a is None or b is None or a == 0 or b == 0:
                    cells.append("")
                else:
                    cells.append("%.2f×" % (a / b if hib else b / a))
        lines.append("| " + " | ".join(cells) + " |")
    ok = []
    for s in systems:
        st = [r.get("stored") for r in results[s]]
        rec = [r.get("recovered") for r in results[s]]
        if disk_only:
            ok.append("%s stored %s (of %s)" % (NAMES[s], ", ".join(map(str, st)), m["check_samples"]))
        else:
            ok.append("%s stored %s, after the crash %s (of %s)" % (
                NAMES[s], ", ".join(map(str, st)), ", ".join(map(str, rec)), m["check_samples"]))
    lines += ["", "Check metric `%s` samples, per run: " % m["check_metric"] + "; ".join(ok) + "."]
    for s, fn in (("tsdbd", tsdbd_breakdown_line), ("victoriametrics", victoria_breakdown_line)):
        bd = fn(results[s], m) if s in systems else None
        if bd:
            lines.append(bd)
    fails = ["%s: %s" % (NAMES[s], r["first_error"]) for s in systems for r in results[s] if r.get("failed_requests")]
    if disk_only:
        if fails:
            lines.append("Failed write requests: " + "; ".join(fails[:4]))
        return "\n".join(lines)
    # Do the PromQL systems agree on the size of each answer?
    diffs = []
    for label in (results[systems[0]][0].get("result_sizes") or {}):
        sizes = {s: results[s][0].get("result_sizes", {}).get(label) for s in systems
                 if results[s][0].get("result_sizes") is not None}
        if len(set(sizes.values())) > 1:
            diffs.append("`%s`: %s" % (label.strip(), ", ".join("%s %s" % (NAMES[k], v) for k, v in sizes.items())))
    if diffs:
        lines.append("Answers differing in size between systems: " + "; ".join(diffs) + ".")
    else:
        lines.append("All PromQL systems returned the same number of series/values for every query.")
    # Does each system answer the same after its restart as before it?
    moved = []
    for sname in systems:
        r0 = results[sname][0]
        before, after = r0.get("result_sizes"), r0.get("rest_result_sizes")
        if before is None or after is None:
            continue
        bad = [l.strip() for l in before if before[l] != after.get(l)]
        if bad:
            moved.append("%s: %s" % (NAMES[sname], ", ".join("`%s`" % b for b in bad[:4])))
    if moved:
        lines.append("Answers whose size changed across the restart: " + "; ".join(moved) + ".")
    elif any(results[s][0].get("rest_result_sizes") is not None for s in systems):
        lines.append("After the restart every system returned answers of the same size as before it.")
    if fails:
        lines.append("Failed write requests: " + "; ".join(fails[:4]))
    return "\n".join(lines)


def machine():
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%d CPUs (%s), %d MiB RAM, kernel %s" % (os.cpu_count(), model, mem, platform.release())


def versions():
    """Installed package versions of the peers (Debian packages)."""
    try:
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
                            "victoria-metrics", "prometheus", "influxdb"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
        return p.stdout.decode().strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return []


def long_range_table(res, systems, key="rest_per_query_p50_ms"):
    """Per long-range query: each system's p50 with max_source_resolution=raw and =auto
    (medians over runs; by default at rest, after the restart), and how much faster auto
    is than raw."""
    psys = [s for s in systems if SYSTEMS[s].promql and res.get(s)]
    labels = [l for l in (res[psys[0]][0].get(key) or {}) if l.endswith(" [raw]")] if psys else []
    if not labels:
        return ""
    head = ["query (28 days)"]
    for s in psys:
        head += ["%s raw, ms" % NAMES[s], "%s auto, ms" % NAMES[s], "%s raw / auto" % NAMES[s]]
    out = ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for l in labels:
        q = l[:-len(" [raw]")]
        cells = [q.replace("|", "\\|")]
        for s in psys:
            raw = statistics.median(r[key][l] for r in res[s] if r.get(key))
            auto = statistics.median(r[key][q + " [auto]"] for r in res[s] if r.get(key))
            cells += ["%.1f" % raw, "%.1f" % auto, "%.1f×" % (raw / auto if auto else 0)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def print_report(size, repeat, systems, datasets, man, results, ceiling, disk_only=False,
                 end_days_ago=0):
    what = [size, "medians of %d runs" % repeat]
    if end_days_ago:
        what.append("data ending %d days ago" % end_days_ago)
    if disk_only:
        what.append("disk figures only")
    print("## Results (%s)\n" % ", ".join(what))
    print("Machine: " + machine() + ". Peers (Debian packages): " + ", ".join(versions()) + ".\n")
    for ds in datasets:
        print(table(ds, results[ds], man, disk_only))
        if ds == "long" and not disk_only:
            settle = [r.get("settle_s") for r in results[ds].get("tsdbd") or [] if r.get("settle_s")]
            print("\nLong-range dashboards at rest (after the restart; tsdbd's closed partitions "
                  "converted and downsampled by `tsdbctl downsample` before it%s):" %
                  (", %.1f s" % statistics.median(settle) if settle else ""))
            print(long_range_table(results[ds], systems))
            print("\nThe same right after ingest (nothing downsampled yet):")
            print(long_range_table(results[ds], systems, "per_query_p50_ms"))
        if ceiling.get(ds) is not None:
            print("\nSender ceiling (same bodies into an in-process sink): {:,.0f} samples/s.\n".format(ceiling[ds]))
        else:
            print("\nSender ceiling: not measured (--disk-only).\n")
    print("Ratios: how many times better tsdbd is (>1 tsdbd better, <1 the peer is better). "
          "`~` marks a median whose runs spread by more than %d%%.\n" % (NOISY_SPREAD * 100))
    print("Disk: \"while ingesting\" is the data directory as it is right after the last "
          "acknowledged write, before any flush or stop (WAL share in parentheses); the "
          "at-rest rows are after each system's flush and a clean stop. Allocated bytes (du).\n")
    if end_days_ago and "prometheus" in systems and "node" in datasets:
        print("Prometheus with data ending %d days ago: a fresh head accepts it (its window "
              "trails the newest sample it holds, not the clock); no block is cut within a "
              "run, so its at-rest figure is still WAL + head chunks.\n" % end_days_ago)
    print("Flags:")
    for s in systems:
        print("- %s: %s" % (NAMES[s], SYSTEMS[s].flags_doc))


def main():
    ap = argparse.ArgumentParser(description="tsdbd side-by-side benchmark")
    ap.add_argument("--size", default="small", choices=["tiny", "small", "medium", "large", "1m"])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--systems", default="tsdbd,victoriametrics,prometheus,influxdb")
    ap.add_argument("--datasets", default="node,cpu")
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "bench"),
                    help="build directory holding tsdbd and benchsend (Release)")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--query-reps", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=900, help="bound of each ingest")
    ap.add_argument("--recovery-timeout", type=float, default=300)
    ap.add_argument("--tsdbd-arg", action="append", default=[], help="extra tsdbd flag (repeatable)")
    ap.add_argument("--settle", type=float, default=SETTLE_S,
                    help="seconds after the last write still counted as ingest CPU")
    ap.add_argument("--pre-crash-wait", type=float, default=PRE_CRASH_WAIT_S,
                    help="seconds between the last write and kill -9")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--out", help="write all raw figures as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep data directories")
    ap.add_argument("--end-days-ago", type=int, default=0, metavar="N",
                    help="datasets end N days ago instead of now - 2 min (same bodies, shifted "
                    "back)")
    ap.add_argument("--disk-only", action="store_true",
                    help="only the disk figures: ingest, measure, flush, stop, measure (no "
                    "queries, no crash recovery, no sender ceiling)")
    ap.add_argument("--shards", type=int, default=1, metavar="N",
                    help="scale-out mode when N > 1: N tsdbd shards (hashmod split, fed in "
                    "parallel) against one tsdbd, queries through a query Prometheus "
                    "remote-reading each side; node and cpu datasets, tsdbd only (default 1: "
                    "the side-by-side run)")
    ap.add_argument("--shard-label", default="shard", metavar="NAME",
                    help="scale-out mode: shard i runs with --external-label NAME=i ('' for "
                    "none; default shard)")
    ap.add_argument("--report", metavar="FILE.json", help="print the tables of an earlier --out "
                    "file and exit")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            d = json.load(f)
        a = d["args"]
        if "scaleout" in d:
            print(scaleout.report(d, d.get("machine", ""), d.get("versions", [])))
            return
        print_report(a["size"], a["repeat"], a["systems"].split(","), a["datasets"].split(","),
                     d["manifest"], d["results"], d["ceiling"], a.get("disk_only", False),
                     a.get("end_days_ago", 0))
        return
    if args.end_days_ago < 0:
        ap.error("--end-days-ago must be 0 or more")
    args.build = os.path.abspath(args.build)  # systems start in their own directories
    args.tsdbd = os.path.join(args.build, "tsdbd")
    args.benchsend = os.path.join(args.build, "benchsend")
    args.tsdbctl = os.path.join(args.build, "tsdbctl")  # optional: the at-rest breakdown
    for p in (args.tsdbd, args.benchsend):
        if not os.access(p, os.X_OK):
            sys.exit("missing %s: build with cmake -DCMAKE_BUILD_TYPE=Release" % p)
    systems = args.systems.split(",")
    datasets = args.datasets.split(",")
    if args.shards < 1:
        ap.error("--shards must be 1 or more")
    if args.shards > 1:
        if "tsdbd" not in systems:
            ap.error("--shards N > 1 compares tsdbd shards with one tsdbd: --systems must "
                     "include tsdbd")
        if not os.access("/usr/bin/prometheus", os.X_OK) and not args.disk_only:
            sys.exit("--shards needs /usr/bin/prometheus (the query Prometheus) unless --disk-only")
        skipped = [x for x in datasets if x not in scaleout.SCALEOUT_DATASETS]
        datasets = [x for x in datasets if x in scaleout.SCALEOUT_DATASETS]
        if not datasets:
            ap.error("--shards: no dataset of %s" % ",".join(scaleout.SCALEOUT_DATASETS))
        peers = [s for s in systems if s != "tsdbd"]
        sys.stderr.write("scale-out mode: %d shards vs one tsdbd%s%s\n" % (
            args.shards, "; peers not run: " + ",".join(peers) if peers else "",
            "; datasets left out: " + ",".join(skipped) if skipped else ""))
        return main_scaleout(args, datasets)

    dsdir = tempfile.mkdtemp(prefix="bench-data-", dir=args.tmpdir)
    try:
        man = generate(args, datasets, dsdir)
        ceiling = {}
        for ds in datasets:
            if args.disk_only:
                ceiling[ds] = None
                continue
            out = subprocess.run([args.benchsend, "--sink", "--bodies", os.path.join(dsdir, man[ds]["file"]),
                                  "--conns", str(args.conns)], stdout=subprocess.PIPE, check=True)
            ceiling[ds] = json.loads(out.stdout)["samples_per_s"]
        results = {ds: {} for ds in datasets}
        for rep in range(args.repeat):
            for ds in datasets:
                order = [s for s in DATASET_SYSTEMS[ds] if s in systems]
                if rep % 2:
                    order.reverse()  # alternate the order so warm caches favour no one
                for name in order:
                    sys.stderr.write("run %d/%d %s %s ... " % (rep + 1, args.repeat, ds, name))
                    sys.stderr.flush()
                    r = run_one(args, name, ds, man, dsdir)
                    if args.disk_only:
                        rec = "not measured"
                    elif r["recovery_s"] is not None:
                        rec = "%.2f s" % r["recovery_s"]
                    else:
                        rec = "FAILED"
                    sys.stderr.write("%.0f samples/s, %.2f CPU-s/M, %.2f B/sample while ingesting, "
                                     "%.2f at rest, recovery %s\n" % (
                                         r["samples_per_s"], r["cpu_s_per_msample"],
                                         r["ingest_bytes_per_sample"], r["bytes_per_sample"], rec))
                    results[ds].setdefault(name, []).append(r)
    finally:
        shutil.rmtree(dsdir, ignore_errors=True)

    print_report(args.size, args.repeat, systems, datasets, man, results, ceiling,
                 args.disk_only, args.end_days_ago)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "manifest": man, "ceiling": ceiling, "results": results,
                       "machine": machine(), "versions": versions()}, f, indent=1)


def generate(args, datasets, dsdir):
    """Writes the datasets into dsdir with gen.py; returns its manifest."""
    t0 = time.time()
    g = subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), "--size", args.size,
                        "--out", dsdir, "--shards", str(args.conns), "--only", ",".join(datasets),
                        "--end-days-ago", str(args.end_days_ago)],
                       stdout=subprocess.PIPE, check=True)
    sys.stderr.write("datasets generated in %.1f s\n" % (time.time() - t0))
    return json.loads(g.stdout)


def main_scaleout(args, datasets):
    """--shards N > 1: the scale-out comparison (scaleout.py)."""
    dsdir = tempfile.mkdtemp(prefix="bench-data-", dir=args.tmpdir)
    try:
        man = generate(args, datasets, dsdir)
        splits, results = scaleout.run(sys.modules[__name__], args, man, dsdir, datasets)
    finally:
        shutil.rmtree(dsdir, ignore_errors=True)
    prom = []
    try:
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}", "prometheus"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10)
        prom = [p.stdout.decode().strip()] if p.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        pass
    d = {"args": vars(args), "manifest": man, "splits": splits, "scaleout": results,
         "machine": machine(), "versions": prom}
    d["args"]["datasets_run"] = ",".join(datasets)
    md = scaleout.report(d, d["machine"], prom)
    print(md)
    if args.out:
        d["markdown"] = md
        with open(args.out, "w") as f:
            json.dump(d, f, indent=1)


if __name__ == "__main__":
    main()
