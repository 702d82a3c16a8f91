"""Shared helpers for tsdbd's integration tests (python3 standard library, plus Debian's
python3-protobuf and python3-snappy for the Prometheus remote protocols).

Environment (set by ctest; sensible defaults when a test is run by hand):
  TS_BUILD     build directory holding the tsdbd binary
  TS_SRCDIR    source tree
  TS_TESTDATA  test data vendored in the repo (tests/data)

What is here:
  Server              one tsdbd on 127.0.0.1 (port chosen by the kernel and read back from
                      its start-up log line, or given), a temporary data directory, start
                      and wait for /-/ready, stop by PID (SIGTERM, then SIGKILL after a
                      bounded wait), restart on the same data; HTTP helpers on urllib that
                      return a Response for every status (4xx/5xx are not exceptions).
                      peers.Tsdbd builds on it.
  Response            status, headers (lower-case names), body bytes, .text, .json().
  jsonl_line()        one VictoriaMetrics JSON line for /api/v1/import.
  pb                  protobuf classes of the Prometheus remote protocols, built at run
                      time from a FileDescriptorProto (no protoc): pb.WriteRequest(), ...
  pb_add_enum(), pb_add_message(), pb_class_getter(), PROM_METRIC_TYPES
                      the pieces to build such classes (peers.py builds RW 2.0 with them).
  write_request()     a snappy-compressed remote-write 1.0 body from plain Python data.
  read_request()      a snappy-compressed remote-read body.
  parse_frames()      splits a STREAMED_XOR_CHUNKS body into ChunkedReadResponse messages,
                      checking each frame's CRC32C.
  crc32c()            table-driven CRC-32C (Castagnoli); the standard library has none.
  xor_decode()        decodes a Prometheus XOR chunk into [(t_ms, value_bits)].
  f64()/bits()        float <-> IEEE-754 bits.
  main()              runs a module's unittest cases, prints the summary, exits non-zero
                      on failure.

Every process started here is stopped by its PID only; every wait is bounded.
"""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("TS_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("TS_BUILD") or os.path.join(SRCDIR, "build")
TESTDATA = os.environ.get("TS_TESTDATA") or os.path.join(SRCDIR, "tests", "data")

STALE_NAN_BITS = 0x7FF0000000000002


def f64(b):
    """IEEE-754 bits (int) -> float."""
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def bits(v):
    """float -> IEEE-754 bits (int)."""
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def now_ms():
    return int(time.time() * 1000)


# ------------------------------------------------------------------------------ HTTP


class Response:
    """An HTTP answer of any status."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:400])


def encode_params(params):
    """dict or list of (name, value) pairs (repeat a name for match[]) -> query string."""
    if params is None:
        return ""
    items = params.items() if isinstance(params, dict) else params
    return urllib.parse.urlencode(list(items))


def http(method, url, body=None, headers=None, timeout=30.0):
    """One request with urllib; returns a Response whatever the status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    except urllib.error.HTTPError as e:
        with e:
            return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


# ---------------------------------------------------------------------------- server


class Server:
    """One tsdbd on 127.0.0.1 with its own temporary data directory.

    s = Server(["--out-of-order-window", "1h"]).start()
    s.get("/api/v1/labels").json()
    s.stop(); s.cleanup()
    """

    def __init__(self, args=(), data_dir=None, binary=None, prefix="tsdbtest-"):
        self.args = list(args)
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "tsdbd.log")
        self.binary = binary or os.path.join(BUILD, "tsdbd")
        self.proc = None
        self.port = None

    def spawn(self, port=None):
        """Starts tsdbd on 127.0.0.1:port (None: a port the kernel picks) without waiting.
        Returns the offset in the log where this run's output begins."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            cmd = [self.binary, "--data-dir", self.data_dir,
                   "--listen", "127.0.0.1:%d" % (port or 0)] + self.args
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        return offset

    def start(self, timeout=30.0, port=None):
        """Starts tsdbd (see spawn()) and waits (at most `timeout` s) until its start-up
        log line names the port and /-/ready answers 200."""
        offset = self.spawn(port)
        deadline = time.monotonic() + timeout
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("tsdbd exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                m = re.search(rb"listening on \S+ \(port (\d+)\)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.02)
        while self.port is not None and time.monotonic() < deadline:
            try:
                if self.get("/-/ready", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("tsdbd not ready within %.0f s:\n%s" % (timeout, self.log_tail()))

    def stop(self, term_wait=15.0):
        """SIGTERM, then SIGKILL after term_wait seconds. Returns the exit code."""
        p = self.proc
        if p is None or p.poll() is not None:
            return p.returncode if p else None
        try:
            p.send_signal(signal.SIGTERM)
            return p.wait(timeout=term_wait)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
        self.kill()
        return p.returncode

    def kill(self):
        """SIGKILL now (no clean shutdown)."""
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)

    def restart(self, timeout=30.0):
        self.stop()
        return self.start(timeout)

    def cleanup(self):
        """Kills the process if still alive and removes the temporary directory."""
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    # -- HTTP
    def url(self, path, params=None):
        q = encode_params(params)
        return "http://127.0.0.1:%d%s%s" % (self.port, path, ("?" + q) if q else "")

    def request(self, method, path, params=None, body=None, headers=None, timeout=30.0):
        return http(method, self.url(path, params), body, headers, timeout)

    def get(self, path, params=None, timeout=30.0):
        return self.request("GET", path, params, timeout=timeout)

    def post(self, path, body, headers=None, params=None, timeout=30.0):
        return self.request("POST", path, params, body, headers, timeout)

    def post_form(self, path, params, timeout=30.0):
        """POST with an application/x-www-form-urlencoded body."""
        return self.post(path, encode_params(params).encode(),
                         {"Content-Type": "application/x-www-form-urlencoded"}, timeout=timeout)

    def post_json(self, path, obj, timeout=30.0):
        return self.post(path, json.dumps(obj).encode(), {"Content-Type": "application/json"},
                         timeout=timeout)

    # -- ingest
    def import_jsonl(self, lines):
        """POST /api/v1/import with JSON lines (strings or dicts); asserts 204."""
        body = "".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines)
        r = self.post("/api/v1/import", body.encode())
        if r.status != 204:
            raise AssertionError("import failed: %r" % r)
        return r

    def remote_write(self, series, metadata=()):
        """POST /api/v1/write (remote write 1.0); see write_request(). Returns the Response."""
        return self.post("/api/v1/write", write_request(series, metadata), {
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})

    def remote_read(self, queries, accepted=()):
        """POST /api/v1/read; see read_request(). Returns the Response."""
        return self.post("/api/v1/read", read_request(queries, accepted), {
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Read-Version": "0.1.0"})


def jsonl_line(labels, samples):
    """{"metric":labels,"values":[..],"timestamps":[..]} from [(t_ms, value), ...]."""
    return json.dumps({"metric": labels, "values": [v for _, v in samples],
                       "timestamps": [t for t, _ in samples]})


# -------------------------------------------------------------------------- protobuf


# Prometheus' MetricType enum (remote write 1.0 and 2.0 alike).
PROM_METRIC_TYPES = [("UNKNOWN", 0), ("COUNTER", 1), ("GAUGE", 2), ("HISTOGRAM", 3),
                     ("GAUGEHISTOGRAM", 4), ("SUMMARY", 5), ("INFO", 6), ("STATESET", 7)]


def pb_add_enum(fp, name, values):
    """Adds enum `name` with [(value name, number)] to FileDescriptorProto fp."""
    e = fp.enum_type.add()
    e.name = name
    for n, v in values:
        ev = e.value.add()
        ev.name, ev.number = n, v


def pb_add_message(fp, name, fields, type_prefix=""):
    """Adds message `name` to FileDescriptorProto fp. fields: [(field name, number,
    FieldDescriptorProto type, label, type name or None)]; a type name is written as
    type_prefix + type name (e.g. ".package." for a type of the same file)."""
    m = fp.message_type.add()
    m.name = name
    for fname, num, ftype, label, tname in fields:
        f = m.field.add()
        f.name, f.number, f.type, f.label = fname, num, ftype, label
        if tname:
            f.type_name = type_prefix + tname


def pb_class_getter(pool):
    """A function: full message name -> its class, for the messages of DescriptorPool
    `pool` (with the API of the python3-protobuf at hand, old or new)."""
    from google.protobuf import message_factory
    fac = message_factory.MessageFactory(pool)

    def cls(name):
        d = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(d)
        return fac.GetPrototype(d)
    return cls


def _build_pb():
    from google.protobuf import descriptor_pb2, descriptor_pool
    F = descriptor_pb2.FieldDescriptorProto
    OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    S, B, D, I64, E, M, BOOL = (F.TYPE_STRING, F.TYPE_BYTES, F.TYPE_DOUBLE, F.TYPE_INT64,
                                F.TYPE_ENUM, F.TYPE_MESSAGE, F.TYPE_BOOL)
    fp = descriptor_pb2.FileDescriptorProto(name="tsdbtest_prom.proto", package="tsdbtest",
                                            syntax="proto3")
    P = ".tsdbtest."

    def enum(name, values):
        pb_add_enum(fp, name, values)

    def msg(name, fields):
        pb_add_message(fp, name, fields, P)

    enum("MetricType", PROM_METRIC_TYPES)
    enum("ResponseType", [("SAMPLES", 0), ("STREAMED_XOR_CHUNKS", 1)])
    enum("MatchType", [("EQ", 0), ("NEQ", 1), ("RE", 2), ("NRE", 3)])
    enum("ChunkEncoding", [("ENC_UNKNOWN", 0), ("XOR", 1)])
    msg("Label", [("name", 1, S, OPT, None), ("value", 2, S, OPT, None)])
    msg("Sample", [("value", 1, D, OPT, None), ("timestamp", 2, I64, OPT, None)])
    msg("TimeSeries", [("labels", 1, M, REP, "Label"), ("samples", 2, M, REP, "Sample")])
    msg("MetricMetadata", [("type", 1, E, OPT, "MetricType"), ("metric_family_name", 2, S, OPT, None),
                           ("help", 4, S, OPT, None), ("unit", 5, S, OPT, None)])
    msg("WriteRequest", [("timeseries", 1, M, REP, "TimeSeries"), ("metadata", 3, M, REP, "MetricMetadata")])
    msg("LabelMatcher", [("type", 1, E, OPT, "MatchType"), ("name", 2, S, OPT, None),
                         ("value", 3, S, OPT, None)])
    msg("ReadHints", [("step_ms", 1, I64, OPT, None), ("func", 2, S, OPT, None),
                      ("start_ms", 3, I64, OPT, None), ("end_ms", 4, I64, OPT, None),
                      ("grouping", 5, S, REP, None), ("by", 6, BOOL, OPT, None),
                      ("range_ms", 7, I64, OPT, None)])
    msg("Query", [("start_timestamp_ms", 1, I64, OPT, None), ("end_timestamp_ms", 2, I64, OPT, None),
                  ("matchers", 3, M, REP, "LabelMatcher"), ("hints", 4, M, OPT, "ReadHints")])
    msg("ReadRequest", [("queries", 1, M, REP, "Query"),
                        ("accepted_response_types", 2, E, REP, "ResponseType")])
    msg("QueryResult", [("timeseries", 1, M, REP, "TimeSeries")])
    msg("ReadResponse", [("results", 1, M, REP, "QueryResult")])
    msg("Chunk", [("min_time_ms", 1, I64, OPT, None), ("max_time_ms", 2, I64, OPT, None),
                  ("type", 3, E, OPT, "ChunkEncoding"), ("data", 4, B, OPT, None)])
    msg("ChunkedSeries", [("labels", 1, M, REP, "Label"), ("chunks", 2, M, REP, "Chunk")])
    msg("ChunkedReadResponse", [("chunked_series", 1, M, REP, "ChunkedSeries"),
                                ("query_index", 2, I64, OPT, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fp)
    cls = pb_class_getter(pool)

    class Classes:
        pass

    out = Classes()
    for m in fp.message_type:
        setattr(out, m.name, cls("tsdbtest." + m.name))
    return out


class _LazyPb:
    """pb.WriteRequest etc., built on first use (so tests without protobuf still import)."""
    _c = None

    def __getattr__(self, name):
        if _LazyPb._c is None:
            _LazyPb._c = _build_pb()
        return getattr(_LazyPb._c, name)


pb = _LazyPb()

EQ, NEQ, RE, NRE = 0, 1, 2, 3
SAMPLES, STREAMED_XOR_CHUNKS = 0, 1


def write_request(series, metadata=()):
    """Snappy remote-write 1.0 body. series: [(labels dict, [(t_ms, value), ...])];
    metadata: [(family, type int, help, unit)]. A value given as ("bits", n) is sent with
    exactly those IEEE-754 bits."""
    import snappy
    wr = pb.WriteRequest()
    for labels, samples in series:
        ts = wr.timeseries.add()
        for k in sorted(labels):
            ts.labels.add(name=k, value=labels[k])
        for t, v in samples:
            if isinstance(v, tuple):
                v = f64(v[1])
            ts.samples.add(value=v, timestamp=t)
    for fam, typ, help_, unit in metadata:
        wr.metadata.add(type=typ, metric_family_name=fam, help=help_, unit=unit)
    return snappy.compress(wr.SerializeToString())


def read_request(queries, accepted=()):
    """Snappy ReadRequest body. queries: [(start_ms, end_ms, [(type, name, value), ...])]."""
    import snappy
    rr = pb.ReadRequest()
    for start, end, matchers in queries:
        q = rr.queries.add(start_timestamp_ms=start, end_timestamp_ms=end)
        for typ, name, value in matchers:
            q.matchers.add(type=typ, name=name, value=value)
    rr.accepted_response_types.extend(accepted)
    return snappy.compress(rr.SerializeToString())


def read_response(body):
    """Decodes a SAMPLES answer (snappy ReadResponse)."""
    import snappy
    m = pb.ReadResponse()
    m.ParseFromString(snappy.uncompress(body))
    return m


# ------------------------------------------------------------------ frames and chunks


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli, reflected 0x82F63B78); crc32c(b"123456789") == 0xE3069283."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _uvarint(buf, pos):
    v = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def parse_frames(body, max_frame=1 << 20):
    """STREAMED_XOR_CHUNKS body -> [ChunkedReadResponse]; raises ValueError on a bad
    length, a frame over max_frame bytes, a CRC mismatch or a truncated frame."""
    out, pos = [], 0
    while pos < len(body):
        n, pos = _uvarint(body, pos)
        if n > max_frame:
            raise ValueError("frame of %d bytes" % n)
        if pos + 4 + n > len(body):
            raise ValueError("truncated frame")
        want = struct.unpack(">I", body[pos:pos + 4])[0]
        msg = body[pos + 4:pos + 4 + n]
        if crc32c(msg) != want:
            raise ValueError("frame CRC mismatch")
        m = pb.ChunkedReadResponse()
        m.ParseFromString(msg)
        out.append(m)
        pos += 4 + n
    return out


class _Bits:
    def __init__(self, data, pos_bits):
        self.d, self.p = data, pos_bits

    def bit(self):
        if self.p >= len(self.d) * 8:
            raise ValueError("chunk ends early")
        b = (self.d[self.p >> 3] >> (7 - (self.p & 7))) & 1
        self.p += 1
        return b

    def read(self, n):
        v = 0
        for _ in range(n):
            v = (v << 1) | self.bit()
        return v


def _signed(v, n):
    """An n-bit delta-of-delta bucket holds -(2^(n-1)-1) .. 2^(n-1) (Prometheus' bstream)."""
    if n == 64:
        return v - (1 << 64) if v >= 1 << 63 else v
    return v - (1 << n) if v > 1 << (n - 1) else v


def xor_decode(data):
    """Prometheus XOR chunk -> [(t_ms, value_bits)] (see PROTOCOLS.md)."""
    n = struct.unpack(">H", data[:2])[0]
    out = []
    if n == 0:
        return out
    pos = 2
    zz, pos = _uvarint(data, pos)
    t = (zz >> 1) ^ -(zz & 1)
    v = struct.unpack(">Q", data[pos:pos + 8])[0]
    pos += 8
    out.append((t, v))
    if n == 1:
        return out
    delta, pos = _uvarint(data, pos)
    r = _Bits(data, pos * 8)
    leading = trailing = None

    def read_value(prev):
        nonlocal leading, trailing
        if r.bit() == 0:
            return prev
        if r.bit() == 1:
            leading = r.read(5)
            sig = r.read(6) or 64
            trailing = 64 - leading - sig
        sig = 64 - leading - trailing
        return prev ^ (r.read(sig) << trailing)

    t += delta
    v = read_value(v)
    out.append((t, v))
    for _ in range(n - 2):
        nb = 0
        while nb < 4 and r.bit() == 1:
            nb += 1
        width = {0: 0, 1: 14, 2: 17, 3: 20, 4: 64}[nb]
        dod = 0
        if width == 64:
            dod = _signed(r.read(64), 64)
        elif width:
            dod = _signed(r.read(width), width)
        delta += dod
        t += delta
        v = read_value(v)
        out.append((t, v))
    return out


# ---------------------------------------------------------------------------- runner


def main():
    """unittest.main() for a test module: verbose, summary printed, exit 1 on failure."""
    prog = unittest.TestProgram(module="__main__", exit=False, verbosity=2, argv=sys.argv[:1])
    res = prog.result
    print("\n%d run, %d failures, %d errors, %d skipped" % (
        res.testsRun, len(res.failures), len(res.errors), len(res.skipped)))
    sys.exit(0 if res.wasSuccessful() else 1)


def export_all(srv):
    """Every series of GET /api/v1/export: {sorted label tuple: sorted [(t_ms, value)]}."""
    r = srv.get("/api/v1/export", {"match[]": '{__name__=~".+"}'})
    assert r.status == 200, r
    out = {}
    for line in r.text.splitlines():
        j = json.loads(line)
        out.setdefault(tuple(sorted(j["metric"].items())), []).extend(
            zip(j["timestamps"], j["values"]))
    return {k: sorted(v) for k, v in out.items()}
