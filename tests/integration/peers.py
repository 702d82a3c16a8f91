"""Helpers for the write-side integration and end-to-end tests.

- Tsdbd: tsdbtest.Server (the built tsdbd on 127.0.0.1 with a temporary data directory,
  started, stopped and killed by PID with bounded waits) restarting on the same port,
  with HTTP helpers on http.client (requests go out as written: no headers added),
  /metrics parsing and the server's RSS. Paths, f64()/bits() and Response come from
  tsdbtest.py too.
- Remote-write encoding: protobuf classes for RW 1.0 and 2.0 built at run time from a
  hand-written descriptor (Debian's python3-protobuf; no protoc), snappy block
  compression (python3-snappy), and raw protobuf framing for shapes python refuses.
- Read-back of stored samples: GET /api/v1/export (JSON lines) when the server has it;
  otherwise a resend oracle: an exact resend of stored samples is accepted as duplicates
  (tsdb_samples_duplicate_total grows by the sample count, nothing new is ingested), so
  resending exactly what we expect and watching the counters proves every sample is
  stored bit-exact (value bits and timestamp).
- Real peers from Debian packages: Prometheus and prometheus-node-exporter on
  127.0.0.1 with temporary directories.

Everything started here is killed by PID only; every wait is bounded.
"""
import gzip
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

import snappy
from google.protobuf import descriptor_pb2, descriptor_pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tsdbtest  # noqa: E402
from tsdbtest import (BUILD, SRCDIR, TESTDATA, Response, bits, f64, now_ms,  # noqa: E402,F401
                      pb_add_enum, pb_add_message, pb_class_getter)

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"

STALE_BITS = tsdbtest.STALE_NAN_BITS


def free_port():
    """A port free right now on 127.0.0.1 (for peers that cannot listen on port 0)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def stop_pid(proc, term_wait=10.0):
    """SIGTERM, then SIGKILL after term_wait seconds. Returns the exit code."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=term_wait)
    except subprocess.TimeoutExpired:
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    return proc.wait(timeout=10)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------- HTTP


def http_request(host, port, method, path, body=None, headers=None, timeout=30.0):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


class Client:
    """A keep-alive HTTP/1.1 client (reconnects once if the server closed the socket)."""

    def __init__(self, port, host="127.0.0.1", timeout=30.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.close()
                return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def raw_exchange(port, data, timeout=5.0, read_until_close=True):
    """Sends raw bytes on a fresh connection and returns everything read until the server
    closes or `timeout` passes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if not read_until_close and b"\r\n\r\n" in out:
                break
    finally:
        s.close()
    return out


def parse_responses(raw):
    """Splits raw HTTP/1.1 response bytes into [(status, headers dict, body)]."""
    res = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hd = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hd[k.strip().lower()] = v.strip()
        n = int(hd.get("content-length", "0"))
        res.append((status, hd, rest[:n]))
        raw = rest[n:]
    return res


# ---------------------------------------------------------------- metrics

_METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format -> {(name, ((l, v), ...)): float}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_RE.match(line)
        if not m:
            continue
        labels = tuple(sorted(_LABEL_RE.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


# ---------------------------------------------------------------- tsdbd


class Tsdbd(tsdbtest.Server):
    """One tsdbd process on 127.0.0.1 with its own data directory (see tsdbtest.Server);
    start() and restart() keep the port of the previous run unless same_port=False."""

    def __init__(self, args=(), data_dir=None, name="tsdbd"):
        super().__init__(args, data_dir, prefix=name + "-")
        self.starts = 0

    # -- lifecycle
    def spawn(self, port=None):
        """Starts the process without waiting for it. Returns the log offset of this run."""
        log_start = super().spawn(port)
        self.starts += 1
        return log_start

    def start(self, timeout=30.0, same_port=True):
        return super().start(timeout, self.port if same_port else None)

    def kill9(self):
        self.kill()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    # -- HTTP
    def request(self, method, path, body=None, headers=None, timeout=30.0):
        return http_request("127.0.0.1", self.port, method, path, body, headers, timeout)

    def get(self, path, timeout=30.0):
        return self.request("GET", path, timeout=timeout)

    def post(self, path, body, headers=None, timeout=30.0):
        return self.request("POST", path, body, headers, timeout)

    def client(self):
        return Client(self.port)

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        return parse_metrics(r.text)

    def rss_kb(self):
        return rss_kb(self.proc.pid)


def metric(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def rejected(m, reason):
    return metric(m, "tsdb_samples_rejected_total", reason=reason)


def ingested(m, protocol):
    return metric(m, "tsdb_samples_ingested_total", protocol=protocol)


# ---------------------------------------------------------------- protobuf

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_S, _B, _D, _I64, _U32, _U64, _E, _M = (_F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_DOUBLE, _F.TYPE_INT64,
                                        _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_ENUM, _F.TYPE_MESSAGE)
_MT = tsdbtest.PROM_METRIC_TYPES
_msg = pb_add_message  # (fp, name, fields): type names given in full
_enum = pb_add_enum


def _build():
    pool = descriptor_pool.DescriptorPool()
    v1 = descriptor_pb2.FileDescriptorProto(name="it_prom_v1.proto", package="prometheus", syntax="proto3")
    _enum(v1, "MetricType", _MT)
    P = ".prometheus."
    _msg(v1, "Label", [("name", 1, _S, _OPT, None), ("value", 2, _S, _OPT, None)])
    _msg(v1, "Sample", [("value", 1, _D, _OPT, None), ("timestamp", 2, _I64, _OPT, None)])
    _msg(v1, "Exemplar", [("labels", 1, _M, _REP, P + "Label"), ("value", 2, _D, _OPT, None),
                          ("timestamp", 3, _I64, _OPT, None)])
    _msg(v1, "Histogram", [("count_int", 1, _U64, _OPT, None), ("sum", 3, _D, _OPT, None),
                           ("timestamp", 15, _I64, _OPT, None)])
    _msg(v1, "TimeSeries", [("labels", 1, _M, _REP, P + "Label"), ("samples", 2, _M, _REP, P + "Sample"),
                            ("exemplars", 3, _M, _REP, P + "Exemplar"),
                            ("histograms", 4, _M, _REP, P + "Histogram")])
    _msg(v1, "MetricMetadata", [("type", 1, _E, _OPT, P + "MetricType"),
                                ("metric_family_name", 2, _S, _OPT, None),
                                ("help", 4, _S, _OPT, None), ("unit", 5, _S, _OPT, None)])
    _msg(v1, "WriteRequest", [("timeseries", 1, _M, _REP, P + "TimeSeries"),
                              ("metadata", 3, _M, _REP, P + "MetricMetadata")])
    pool.Add(v1)
    v2 = descriptor_pb2.FileDescriptorProto(name="it_prom_v2.proto", package="io.prometheus.write.v2",
                                            syntax="proto3")
    Q = ".io.prometheus.write.v2."
    _enum(v2, "MetricType", _MT)
    _msg(v2, "Sample", [("value", 1, _D, _OPT, None), ("timestamp", 2, _I64, _OPT, None),
                        ("start_timestamp", 3, _I64, _OPT, None)])
    _msg(v2, "Exemplar", [("labels_refs", 1, _U32, _REP, None), ("value", 2, _D, _OPT, None),
                          ("timestamp", 3, _I64, _OPT, None)])
    _msg(v2, "Histogram", [("count_int", 1, _U64, _OPT, None), ("sum", 3, _D, _OPT, None),
                           ("timestamp", 15, _I64, _OPT, None)])
    _msg(v2, "Metadata", [("type", 1, _E, _OPT, Q + "MetricType"), ("help_ref", 3, _U32, _OPT, None),
                          ("unit_ref", 4, _U32, _OPT, None)])
    _msg(v2, "TimeSeries", [("labels_refs", 1, _U32, _REP, None), ("samples", 2, _M, _REP, Q + "Sample"),
                            ("histograms", 3, _M, _REP, Q + "Histogram"),
                            ("exemplars", 4, _M, _REP, Q + "Exemplar"),
                            ("metadata", 5, _M, _OPT, Q + "Metadata")])
    _msg(v2, "Request", [("symbols", 4, _S, _REP, None), ("timeseries", 5, _M, _REP, Q + "TimeSeries")])
    pool.Add(v2)
    return pb_class_getter(pool)


_cls = _build()
WriteRequest = _cls("prometheus.WriteRequest")
RequestV2 = _cls("io.prometheus.write.v2.Request")

CT_V1 = "application/x-protobuf"
CT_V2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"


def rw1_headers(ct=CT_V1):
    return {"Content-Type": ct, "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0"}


def rw2_headers():
    return {"Content-Type": CT_V2, "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "2.0.0"}


def _val(v):
    """A sample value given as float or as ("bits", u64)."""
    if isinstance(v, tuple):
        return f64(v[1])
    return float(v)


def _add_samples(ts, samples, n_histograms, histogram_sum):
    """Adds samples [(t_ms, value)] and n_histograms native histogram samples (counts 3,
    4, ..., sum histogram_sum, at the first sample's time) to a TimeSeries (RW 1.0 or 2.0)."""
    for t, v in samples:
        s = ts.samples.add()
        s.timestamp = t
        s.value = _val(v)
    for k in range(n_histograms):
        h = ts.histograms.add()
        h.count_int = 3 + k
        h.sum = histogram_sum
        h.timestamp = samples[0][0] if samples else 1


def encode_rw1(series, metadata=(), histograms=None):
    """series: [(labels [(name, value)], samples [(t_ms, value)])]; value a float or
    ("bits", u64). histograms: {series index: count} adds native histogram samples.
    Returns the uncompressed protobuf."""
    wr = WriteRequest()
    for i, (labels, samples) in enumerate(series):
        ts = wr.timeseries.add()
        for n, v in labels:
            lb = ts.labels.add()
            lb.name, lb.value = n, v
        _add_samples(ts, samples, (histograms or {}).get(i, 0), 1.5)
    for typ, fam, hlp, unit in metadata:
        m = wr.metadata.add()
        m.type, m.metric_family_name, m.help, m.unit = typ, fam, hlp, unit
    return wr.SerializeToString()


def encode_rw2(series, histograms=None, exemplars=None):
    """series as for encode_rw1; builds the symbol table. Returns uncompressed protobuf."""
    req = RequestV2()
    syms = {"": 0}
    order = [""]

    def ref(s):
        if s not in syms:
            syms[s] = len(order)
            order.append(s)
        return syms[s]
    for i, (labels, samples) in enumerate(series):
        ts = req.timeseries.add()
        for n, v in labels:
            ts.labels_refs.extend([ref(n), ref(v)])
        _add_samples(ts, samples, (histograms or {}).get(i, 0), 2.5)
        for k in range((exemplars or {}).get(i, 0)):
            e = ts.exemplars.add()
            e.labels_refs.extend([ref("trace_id"), ref("t%d" % k)])
            e.value = 0.5
            e.timestamp = samples[0][0] if samples else 1
    req.symbols.extend(order)
    return req.SerializeToString()


def sz(payload):
    return snappy.compress(payload)


# raw protobuf framing
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pb_tag(num, wt):
    return varint(num << 3 | wt)


def pb_ld(num, payload):
    return pb_tag(num, 2) + varint(len(payload)) + payload


def raw_rw1_series(labels, samples):
    """One TimeSeries (field 1 of WriteRequest) with labels given as raw bytes, so
    unsorted, duplicate, empty and invalid UTF-8 labels can be sent."""
    body = b""
    for n, v in labels:
        body += pb_ld(1, (pb_ld(1, n) if n else b"") + (pb_ld(2, v) if v else b""))
    for t, v in samples:
        body += pb_ld(2, pb_tag(1, 1) + struct.pack("<d", _val(v)) + pb_tag(2, 0) + varint(t))
    return pb_ld(1, body)


def gz(data):
    return gzip.compress(data)


# ---------------------------------------------------------------- read-back


def export_available(srv):
    r = srv.get("/api/v1/export?match[]=" + urllib.parse.quote('{__name__="__probe_export__"}'))
    return r.status == 200


def export(srv, matcher, start=None, end=None):
    """GET /api/v1/export -> {labels tuple (sorted (name, value)): [(t, value float)]}."""
    q = "match[]=" + urllib.parse.quote(matcher)
    if start is not None:
        q += "&start=%s" % start
    if end is not None:
        q += "&end=%s" % end
    r = srv.get("/api/v1/export?" + q, timeout=120)
    assert r.status == 200, r
    out = {}
    for line in r.body.splitlines():
        if not line.strip():
            continue
        o = json.loads(line, parse_int=_json_int)
        key = tuple(sorted(o["metric"].items()))
        vals = [export_value(v) for v in o["values"]]
        out.setdefault(key, []).extend(zip(o["timestamps"], vals))
    for k in out:
        out[k].sort(key=lambda x: x[0])
    return out


def _json_int(s):
    # "-0" is the value -0.0 (its sign bit matters); plain int() would drop it
    return -0.0 if s == "-0" else int(s)


def export_value(v):
    if v is None:
        return float("nan")
    if isinstance(v, str):
        s = v.lower().lstrip("+")
        if s in ("nan", "null"):
            return float("nan")
        if s in ("inf", "infinity"):
            return float("inf")
        if s in ("-inf", "-infinity"):
            return float("-inf")
        return float(v)
    return float(v)


def same_value(a, b):
    """Bit-exact, except that NaNs compare by being NaN (the text form loses payloads)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bits(float(a)) == bits(float(b))


def _json_value(v):
    v = _val(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def encode_jsonl(series):
    out = []
    for labels, samples in series:
        out.append(json.dumps({"metric": dict(labels), "values": [_json_value(v) for _, v in samples],
                               "timestamps": [t for t, _ in samples]}, ensure_ascii=False))
    return ("\n".join(out) + "\n").encode("utf-8")


def resend_check(srv, series, chunk=2000, via="rw1"):
    """The resend oracle. series: [(labels, samples)] expected to be stored exactly.
    Sends them again (as RW 1.0, or as JSON lines for label names outside Prometheus'
    rules; JSON lines cannot carry NaN payloads) and returns (n_duplicate, n_new,
    n_other_rejected, statuses). All present bit-exact <=> n_duplicate == total and
    the others are 0. Samples not present get stored by the check (callers use it at
    the end)."""
    m0 = srv.metrics()
    statuses = set()
    batch, n = [], 0

    def send(b):
        if via == "rw1":
            r = srv.post("/api/v1/write", sz(encode_rw1(b)), rw1_headers())
        else:
            r = srv.post("/api/v1/import", encode_jsonl(b))
        statuses.add(r.status)
    for s in series:
        batch.append(s)
        n += len(s[1])
        if n >= chunk:
            send(batch)
            batch, n = [], 0
    if batch:
        send(batch)
    m1 = srv.metrics()
    proto = "remote_write" if via == "rw1" else "jsonl"
    dup = metric(m1, "tsdb_samples_duplicate_total") - metric(m0, "tsdb_samples_duplicate_total")
    new = ingested(m1, proto) - ingested(m0, proto)
    other = sum(metric(m1, "tsdb_samples_rejected_total", reason=r) - metric(m0, "tsdb_samples_rejected_total", reason=r)
                for r in ("out_of_order", "duplicate_conflict", "too_old", "too_far_in_future", "invalid_series",
                          "parse_error"))
    return int(dup), int(new), int(other), statuses


# ---------------------------------------------------------------- peers


def _wait_http(port, path, timeout, proc, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            if http_request("127.0.0.1", port, "GET", path, timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("%s not ready on port %d in %.0fs" % (what, port, timeout))


class _Peer:
    """A peer program on 127.0.0.1 in a temporary directory of its own (its output in
    <tmp>/log), started on a free port, tried three times (another process may take the
    port between free_port() and the peer's bind); stopped by PID."""
    STOP_WAIT = 10.0

    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.proc = None
        self.port = None

    def _start(self, make_cmd, ready_path, timeout, what, retry_wait, cwd=None):
        """make_cmd(port) -> argv. Returns self once GET ready_path answers 200; a try
        that fails is stopped (SIGKILL after retry_wait s) and the last failure raised."""
        for attempt in range(3):
            self.port = free_port()
            cmd = make_cmd(self.port)
            log = open(os.path.join(self.tmp, "log"), "ab")
            try:
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=cwd)
            finally:
                log.close()
            try:
                _wait_http(self.port, ready_path, timeout, self.proc, what)
                return self
            except RuntimeError:
                stop_pid(self.proc, retry_wait)
                if attempt == 2:
                    raise
        return self

    def log_tail(self, n=3000):
        try:
            with open(os.path.join(self.tmp, "log"), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        stop_pid(self.proc, self.STOP_WAIT)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class NodeExporter(_Peer):
    """prometheus-node-exporter on 127.0.0.1 with a few cheap, quiet collectors."""
    COLLECTORS = ("cpu", "meminfo", "loadavg", "stat", "time", "uname", "vmstat", "filefd")

    def __init__(self):
        super().__init__("node-exporter-")

    def start(self, timeout=20.0):
        def cmd(port):
            return [NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % port,
                    "--collector.disable-defaults"] + ["--collector.%s" % c for c in self.COLLECTORS]
        return self._start(cmd, "/metrics", timeout, "node exporter", 5)


class Prometheus(_Peer):
    """A Prometheus server on 127.0.0.1 with a generated config and a temporary TSDB."""
    STOP_WAIT = 15.0

    def __init__(self, config_text, receiver=False, data_dir=None, args=()):
        super().__init__("prometheus-")
        self.config_text = config_text
        self.receiver = receiver
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.args = list(args)

    def start(self, timeout=40.0):
        cfg = os.path.join(self.tmp, "prometheus.yml")

        def cmd(port):
            with open(cfg, "w") as f:   # "{PROM_PORT}" in the config is its own port
                f.write(self.config_text.replace("{PROM_PORT}", str(port)))
            argv = [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + self.data_dir,
                    "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"] + self.args
            if self.receiver:
                argv.append("--web.enable-remote-write-receiver")
            return argv
        return self._start(cmd, "/-/ready", timeout, "prometheus", 10, cwd=self.tmp)

    def get(self, path, timeout=30.0):
        return http_request("127.0.0.1", self.port, "GET", path, timeout=timeout)

    def post(self, path, body=b"", headers=None, timeout=30.0):
        return http_request("127.0.0.1", self.port, "POST", path, body, headers, timeout=timeout)

    def api(self, path, **params):
        items = []
        for k, v in params.items():
            if isinstance(v, (list, tuple)):
                items.extend((k, x) for x in v)
            else:
                items.append((k, v))
        r = self.get(path + "?" + urllib.parse.urlencode(items))
        assert r.status == 200, r
        o = r.json()
        assert o["status"] == "success", o
        return o["data"]


def run_main():
    """unittest.main with a one-line summary and a non-zero exit on failure."""
    import unittest
    t0 = time.monotonic()
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    print("SUMMARY %s: %d run, %d failures, %d errors, %d expected failures, %d skipped, "
          "%d unexpected successes in %.1fs" % (
              os.path.basename(sys.argv[0]), r.testsRun, len(r.failures), len(r.errors),
              len(r.expectedFailures), len(r.skipped), len(r.unexpectedSuccesses), time.monotonic() - t0))
    sys.exit(0 if r.wasSuccessful() else 1)
