#!/usr/bin/python3
"""Generates the golden remote-write / remote-read vectors in tests/data/rw/.

Run by hand (/usr/bin/python3 tests/integration/gen_rw_vectors.py), never by ctest: the
vectors are committed and must never be regenerated once tests depend on them.

The reference encoder is Debian's python3-protobuf. There is no protoc here, so the
messages of PROTOCOLS.md are described by a hand-written FileDescriptorProto and their
classes are built at run time. A few vectors are hand-framed on top of that to get
encodings python will not produce by itself: unpacked repeated uint32, unknown fields of
every wire type (groups included), fields out of order, invalid UTF-8, corrupt framing.

Output:
  <name>.sz        the body as sent: snappy block of the protobuf message
  expected.txt     what tests/unit/test_remote_write.c / test_remote_read.c must decode
  rr_samples.pb, rr_chunked.pb   reference encodings of responses our encoder must
                   reproduce byte for byte (uncompressed)
Expected-file grammar (strings hex-encoded, "-" for the empty string):
  vector <file> <rw1|rw2|rr> <ok|corrupt|invalid>
  series <n_labels> <n_samples> <n_histograms> <n_exemplars>
  label <name> <value>          sample <t_ms> <value bits as 16 hex digits>
  exemplar <n_labels> <t_ms> <bits>     meta2 <has> <type> <help> <unit>
  metadata <type> <family> <help> <unit>     valid <reason name>
  rtype <n>   query <start> <end> <n_matchers> <has_hints>   matcher <type> <name> <value>
  hints <step> <func> <start> <end> <by> <range> <n_grouping>   group <name>
  end
"""
import os
import struct
import sys

import snappy
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "rw")


def add_msg(fp, name, fields):
    m = fp.message_type.add()
    m.name = name
    for (fname, num, ftype, label, tname) in fields:
        f = m.field.add()
        f.name = fname
        f.number = num
        f.type = ftype
        f.label = label
        if tname:
            f.type_name = tname
    return m


def add_enum(fp, name, values):
    e = fp.enum_type.add()
    e.name = name
    for n, v in values:
        ev = e.value.add()
        ev.name = n
        ev.number = v


OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
S, B, D, I64, U32, U64, E, M, BOOL = (F.TYPE_STRING, F.TYPE_BYTES, F.TYPE_DOUBLE, F.TYPE_INT64,
                                      F.TYPE_UINT32, F.TYPE_UINT64, F.TYPE_ENUM, F.TYPE_MESSAGE,
                                      F.TYPE_BOOL)
MT = [("UNKNOWN", 0), ("COUNTER", 1), ("GAUGE", 2), ("HISTOGRAM", 3), ("GAUGEHISTOGRAM", 4),
      ("SUMMARY", 5), ("INFO", 6), ("STATESET", 7)]


def build():
    pool = descriptor_pool.DescriptorPool()
    v1 = descriptor_pb2.FileDescriptorProto(name="prom_v1.proto", package="prometheus", syntax="proto3")
    add_enum(v1, "MetricType", MT)
    add_enum(v1, "ResponseType", [("SAMPLES", 0), ("STREAMED_XOR_CHUNKS", 1)])
    add_enum(v1, "MatchType", [("EQ", 0), ("NEQ", 1), ("RE", 2), ("NRE", 3)])
    add_enum(v1, "ChunkEncoding", [("ENC_UNKNOWN", 0), ("XOR", 1)])
    P = ".prometheus."
    add_msg(v1, "Label", [("name", 1, S, OPT, None), ("value", 2, S, OPT, None)])
    add_msg(v1, "Sample", [("value", 1, D, OPT, None), ("timestamp", 2, I64, OPT, None)])
    add_msg(v1, "Exemplar", [("labels", 1, M, REP, P + "Label"), ("value", 2, D, OPT, None),
                             ("timestamp", 3, I64, OPT, None)])
    add_msg(v1, "Histogram", [("count_int", 1, U64, OPT, None), ("sum", 3, D, OPT, None),
                              ("timestamp", 15, I64, OPT, None)])
    add_msg(v1, "TimeSeries", [("labels", 1, M, REP, P + "Label"), ("samples", 2, M, REP, P + "Sample"),
                               ("exemplars", 3, M, REP, P + "Exemplar"),
                               ("histograms", 4, M, REP, P + "Histogram")])
    add_msg(v1, "MetricMetadata", [("type", 1, E, OPT, P + "MetricType"),
                                   ("metric_family_name", 2, S, OPT, None),
                                   ("help", 4, S, OPT, None), ("unit", 5, S, OPT, None)])
    add_msg(v1, "WriteRequest", [("timeseries", 1, M, REP, P + "TimeSeries"),
                                 ("metadata", 3, M, REP, P + "MetricMetadata")])
    add_msg(v1, "LabelMatcher", [("type", 1, E, OPT, P + "MatchType"), ("name", 2, S, OPT, None),
                                 ("value", 3, S, OPT, None)])
    add_msg(v1, "ReadHints", [("step_ms", 1, I64, OPT, None), ("func", 2, S, OPT, None),
                              ("start_ms", 3, I64, OPT, None), ("end_ms", 4, I64, OPT, None),
                              ("grouping", 5, S, REP, None), ("by", 6, BOOL, OPT, None),
                              ("range_ms", 7, I64, OPT, None)])
    add_msg(v1, "Query", [("start_timestamp_ms", 1, I64, OPT, None), ("end_timestamp_ms", 2, I64, OPT, None),
                          ("matchers", 3, M, REP, P + "LabelMatcher"), ("hints", 4, M, OPT, P + "ReadHints")])
    add_msg(v1, "ReadRequest", [("queries", 1, M, REP, P + "Query"),
                                ("accepted_response_types", 2, E, REP, P + "ResponseType")])
    add_msg(v1, "QueryResult", [("timeseries", 1, M, REP, P + "TimeSeries")])
    add_msg(v1, "ReadResponse", [("results", 1, M, REP, P + "QueryResult")])
    add_msg(v1, "Chunk", [("min_time_ms", 1, I64, OPT, None), ("max_time_ms", 2, I64, OPT, None),
                          ("type", 3, E, OPT, P + "ChunkEncoding"), ("data", 4, B, OPT, None)])
    add_msg(v1, "ChunkedSeries", [("labels", 1, M, REP, P + "Label"), ("chunks", 2, M, REP, P + "Chunk")])
    add_msg(v1, "ChunkedReadResponse", [("chunked_series", 1, M, REP, P + "ChunkedSeries"),
                                        ("query_index", 2, I64, OPT, None)])
    pool.Add(v1)

    v2 = descriptor_pb2.FileDescriptorProto(name="prom_v2.proto", package="io.prometheus.write.v2",
                                            syntax="proto3")
    Q = ".io.prometheus.write.v2."
    add_enum(v2, "MetricType", MT)
    add_msg(v2, "Sample", [("value", 1, D, OPT, None), ("timestamp", 2, I64, OPT, None),
                           ("start_timestamp", 3, I64, OPT, None)])
    add_msg(v2, "Exemplar", [("labels_refs", 1, U32, REP, None), ("value", 2, D, OPT, None),
                             ("timestamp", 3, I64, OPT, None)])
    add_msg(v2, "Histogram", [("count_int", 1, U64, OPT, None), ("sum", 3, D, OPT, None)])
    add_msg(v2, "Metadata", [("type", 1, E, OPT, Q + "MetricType"), ("help_ref", 3, U32, OPT, None),
                             ("unit_ref", 4, U32, OPT, None)])
    add_msg(v2, "TimeSeries", [("labels_refs", 1, U32, REP, None), ("samples", 2, M, REP, Q + "Sample"),
                               ("histograms", 3, M, REP, Q + "Histogram"),
                               ("exemplars", 4, M, REP, Q + "Exemplar"),
                               ("metadata", 5, M, OPT, Q + "Metadata"),
                               ("created_timestamp", 6, I64, OPT, None)])
    add_msg(v2, "Request", [("symbols", 4, S, REP, None), ("timeseries", 5, M, REP, Q + "TimeSeries")])
    pool.Add(v2)

    fac = message_factory.MessageFactory(pool)

    def cls(name):
        d = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(d)
        return fac.GetPrototype(d)
    return cls


cls = build()
WR = cls("prometheus.WriteRequest")
TS1 = cls("prometheus.TimeSeries")
RR = cls("prometheus.ReadRequest")
RESP = cls("prometheus.ReadResponse")
CRR = cls("prometheus.ChunkedReadResponse")
REQ2 = cls("io.prometheus.write.v2.Request")
TS2 = cls("io.prometheus.write.v2.TimeSeries")


def f64(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def h(s):
    if isinstance(s, str):
        s = s.encode()
    return s.hex() if s else "-"


# raw wire helpers for hand-framed parts
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(num, wt):
    return varint(num << 3 | wt)


def ld(num, payload):
    return tag(num, 2) + varint(len(payload)) + payload


def unknown_all(base):
    """Unknown fields base..base+4 of every wire type, including a nested group."""
    return (tag(base, 0) + varint(2**63 + 5) + tag(base + 1, 1) + b"\x01" * 8 +
            ld(base + 2, b"junk\x00\xff") + tag(base + 3, 5) + b"\x02" * 4 +
            tag(base + 4, 3) + tag(1, 0) + varint(7) + tag(2, 3) + ld(3, b"x") + tag(2, 4) +
            tag(base + 4, 4))


vectors = []   # (file, kind, expect, payload bytes, expectation lines)
STALE = 0x7FF0000000000002


def rw1_lines(req_series, metadata=(), valid=None):
    """Expectation lines from a list of (labels, samples, n_hist, exemplars)."""
    lines = []
    for i, (labels, samples, nh, exs) in enumerate(req_series):
        lines.append("series %d %d %d %d" % (len(labels), len(samples), nh, len(exs)))
        for n, v in labels:
            lines.append("label %s %s" % (h(n), h(v)))
        for t, b in samples:
            lines.append("sample %d %016x" % (t, b))
        for (el, t, b) in exs:
            lines.append("exemplar %d %d %016x" % (len(el), t, b))
            for n, v in el:
                lines.append("label %s %s" % (h(n), h(v)))
        lines.append("valid %s" % (valid[i] if valid else "valid"))
    for (t, fam, hp, unit) in metadata:
        lines.append("metadata %d %s %s %s" % (t, h(fam), h(hp), h(unit)))
    return lines


def make_wr(series, metadata=()):
    wr = WR()
    for labels, samples, nh, exs in series:
        ts = wr.timeseries.add()
        for n, v in labels:
            lb = ts.labels.add()
            lb.name = n
            lb.value = v
        for t, b in samples:
            s = ts.samples.add()
            s.value = f64(b)
            s.timestamp = t
        for el, t, b in exs:
            e = ts.exemplars.add()
            for n, v in el:
                lb = e.labels.add()
                lb.name = n
                lb.value = v
            e.value = f64(b)
            e.timestamp = t
        for k in range(nh):
            hh = ts.histograms.add()
            hh.count_int = 10 + k
            hh.sum = 1.5
            hh.timestamp = 1000 + k
    for (t, fam, hp, unit) in metadata:
        m = wr.metadata.add()
        m.type = t
        m.metric_family_name = fam
        m.help = hp
        m.unit = unit
    return wr.SerializeToString()


def add_rw1(name, series, metadata=(), valid=None, extra=b""):
    vectors.append((name, "rw1", "ok", make_wr(series, metadata) + extra,
                    rw1_lines(series, metadata, valid)))


def up(job, inst):
    return [("__name__", "up"), ("instance", inst), ("job", job)]


# --- RW 1.0 ---
add_rw1("rw1_empty", [])
add_rw1("rw1_basic", [(up("node", "a:9100"), [(1700000000000, bits(1.0)), (1700000015000, bits(0.0))], 0, []),
                      (up("node", "b:9100"), [(1700000000000, bits(1.0))], 0, [])])
many = []
for i in range(100):
    labels = [("__name__", "http_requests_total")] + [("l%d" % k, "value_%d_%d" % (k, i)) for k in range(9)]
    many.append((labels, [(1700000000000 + i, bits(float(i))), (1700000015000 + i, bits(i + 0.5))], 0, []))
add_rw1("rw1_many", many)
add_rw1("rw1_special_values", [([("__name__", "weird")], [
    (-1, STALE), (-9223372036854775808, 0x7FF8000000000001), (9223372036854775807, bits(float("inf"))),
    (0, bits(float("-inf"))), (-1700000000000, 0x8000000000000000), (0, 0), (5, 1),
    (6, 0xFFFFFFFFFFFFFFFF)], 0, [])])
add_rw1("rw1_unicode", [([("__name__", "temp_celsius"), ("city", "Zürich"), ("emoji", "🔥"),
                          ("jp", "日本語"), ("zz", "a\u0000b")], [(1, bits(21.5))], 0, [])])
add_rw1("rw1_metadata", [(up("x", "y"), [(1, bits(1))], 0, [])],
        metadata=[(1, "http_requests_total", "Total requests.", ""), (2, "temp", "Temperature ü", "celsius"),
                  (7, "state", "", ""), (0, "", "", "")])
add_rw1("rw1_exemplars_hist", [([("__name__", "lat_bucket"), ("le", "0.5")], [(10, bits(3))], 2,
                                [([("trace_id", "abc123")], 9, bits(0.25)), ([], -4, bits(1))]),
                               ([("__name__", "h")], [], 1, [])])
# unknown fields everywhere: top level (also reserved 2), in TimeSeries, Label, Sample.
lab = ld(1, b"__name__") + unknown_all(20) + ld(2, b"u")
smp = tag(1, 1) + struct.pack("<Q", bits(2.5)) + unknown_all(9) + tag(2, 0) + varint(77)
tsb = ld(1, lab) + unknown_all(30) + ld(2, smp)
body = unknown_all(40) + ld(2, b"reserved") + ld(1, tsb) + unknown_all(100000)
vectors.append(("rw1_unknown_fields", "rw1", "ok", body,
                ["series 1 1 0 0", "label %s %s" % (h("__name__"), h("u")), "sample 77 %016x" % bits(2.5),
                 "valid valid"]))
# decodes, but label rules fail (hand-framed where python would refuse, e.g. bad UTF-8)


def label_raw(n, v):
    return ld(1, (ld(1, n) if n else b"") + (ld(2, v) if v else b""))


inv = [
    ([(b"__name__", b"m"), (b"b", b"1"), (b"a", b"2")], "unsorted_labels"),
    ([(b"__name__", b"m"), (b"a", b"1"), (b"a", b"2")], "duplicate_label"),
    ([(b"a", b"1")], "no_metric_name"),
    ([(b"__name__", b"1abc")], "bad_metric_name"),
    ([(b"__name__", b"m"), (b"a-b", b"1")], "bad_label_name"),
    ([(b"__name__", b"m"), (b"a", b"\xc0\xaf")], "bad_utf8"),
    ([(b"__name__", b"m"), (b"a", b"\xed\xa0\x80")], "bad_utf8"),
    ([(b"__name__", b"m"), (b"a", b"\xf4\x90\x80\x80")], "bad_utf8"),
    ([(b"", b"x"), (b"__name__", b"m")], "bad_label_name"),
    ([(b"__name__", b"m"), (b"dropped", b""), (b"z", b"1")], "valid"),
    ([(b"__name__", b"ns:metric_1"), (b"_x9", b"1")], "valid"),
    ([(b"__name__", b"")], "no_metric_name"),
]
body = b""
lines = []
for labels, why in inv:
    body += ld(1, b"".join(label_raw(n, v) for n, v in labels) + ld(2, tag(2, 0) + varint(1)))
    lines.append("series %d 1 0 0" % len(labels))
    for n, v in labels:
        lines.append("label %s %s" % (h(n), h(v)))
    lines.append("sample 1 %016x" % 0)
    lines.append("valid " + why)
vectors.append(("rw1_invalid_labels", "rw1", "ok", body, lines))
# corrupt framing
good = make_wr([(up("a", "b"), [(1, bits(1))], 0, [])])
vectors.append(("rw1_bad_truncated", "rw1", "corrupt", good[:-3], []))
vectors.append(("rw1_bad_overrun", "rw1", "corrupt", ld(1, b"")[:1] + varint(200) + b"\x0a\x00", []))
vectors.append(("rw1_bad_wiretype", "rw1", "corrupt", ld(1, tag(1, 0) + varint(3)), []))
vectors.append(("rw1_bad_field0", "rw1", "corrupt", b"\x02\x00", []))
vectors.append(("rw1_bad_varint", "rw1", "corrupt", ld(1, ld(2, tag(2, 0) + b"\xff" * 10 + b"\x01")), []))
vectors.append(("rw1_bad_group", "rw1", "corrupt", tag(9, 3) + tag(1, 0) + b"\x01" + tag(8, 4), []))
vectors.append(("rw1_bad_wiretype7", "rw1", "corrupt", tag(5, 7), []))

# --- RW 2.0 ---


def rw2_lines(symbols, series):
    lines = []
    for refs, samples, nh, exs, meta in series:
        lines.append("series %d %d %d %d" % (len(refs) // 2, len(samples), nh, len(exs)))
        for i in range(0, len(refs), 2):
            lines.append("label %s %s" % (h(symbols[refs[i]]), h(symbols[refs[i + 1]])))
        for t, b in samples:
            lines.append("sample %d %016x" % (t, b))
        for (erefs, t, b) in exs:
            lines.append("exemplar %d %d %016x" % (len(erefs) // 2, t, b))
            for i in range(0, len(erefs), 2):
                lines.append("label %s %s" % (h(symbols[erefs[i]]), h(symbols[erefs[i + 1]])))
        if meta:
            lines.append("meta2 1 %d %s %s" % (meta[0], h(symbols[meta[1]]), h(symbols[meta[2]])))
        else:
            lines.append("meta2 0 0 - -")
        lines.append("valid valid")
    return lines


def make_rw2(symbols, series):
    req = REQ2()
    req.symbols.extend(symbols)
    for refs, samples, nh, exs, meta in series:
        ts = req.timeseries.add()
        ts.labels_refs.extend(refs)
        for t, b in samples:
            s = ts.samples.add()
            s.value = f64(b)
            s.timestamp = t
            s.start_timestamp = t - 1000
        for k in range(nh):
            ts.histograms.add().count_int = 5
        for erefs, t, b in exs:
            e = ts.exemplars.add()
            e.labels_refs.extend(erefs)
            e.timestamp = t
            e.value = f64(b)
        if meta:
            ts.metadata.type = meta[0]
            ts.metadata.help_ref = meta[1]
            ts.metadata.unit_ref = meta[2]
        ts.created_timestamp = 123
    return req.SerializeToString()


sym = ["", "__name__", "http_requests_total", "job", "api", "instance", "host:1", "Total HTTP requests.",
       "requests", "trace_id", "t-1", "temp", "Zürich 🔥"]
s2 = [([1, 2, 5, 6, 3, 4], [(1700000000000, bits(10)), (1700000001000, STALE)], 0, [([9, 10], 1700000000500, bits(0.1))],
       (1, 7, 8)),
      ([1, 11, 3, 12], [(-5, bits(-1.5))], 2, [], None)]
vectors.append(("rw2_basic", "rw2", "ok", make_rw2(sym, s2), rw2_lines(sym, s2)))
vectors.append(("rw2_empty", "rw2", "ok", b"", []))
vectors.append(("rw2_only_symbols", "rw2", "ok", make_rw2(["", "a"], []), []))


def ts2_raw(refs, packed, t, b, extra=b""):
    if packed:
        r = ld(1, b"".join(varint(x) for x in refs))
    else:
        r = b"".join(tag(1, 0) + varint(x) for x in refs)
    return r + ld(2, tag(1, 1) + struct.pack("<Q", b) + tag(2, 0) + varint(t)) + extra


syms_raw = b"".join(ld(4, s.encode()) for s in sym)
refs_a = [1, 2, 5, 6, 3, 4]
# unpacked refs, and a pair split across a packed and an unpacked piece
ts_unp = ts2_raw(refs_a, False, 7, bits(1))
ts_mix = ld(1, varint(1) + varint(11) + varint(3)) + tag(1, 0) + varint(12) + \
    ld(2, tag(2, 0) + varint(8))
body = syms_raw + ld(5, ts_unp) + ld(5, ts_mix)
lines = rw2_lines(sym, [(refs_a, [(7, bits(1))], 0, [], None), ([1, 11, 3, 12], [(8, 0)], 0, [], None)])
vectors.append(("rw2_unpacked_refs", "rw2", "ok", body, lines))
# series before symbols, old field 6, unknown fields everywhere, reserved 1-3 present
body = (ld(5, ts2_raw(refs_a, True, 9, bits(2), tag(6, 0) + varint(5) + unknown_all(50))) +
        tag(1, 0) + varint(1) + ld(2, b"old") + unknown_all(60) + syms_raw)
vectors.append(("rw2_out_of_order", "rw2", "ok", body,
                rw2_lines(sym, [(refs_a, [(9, bits(2))], 0, [], None)])))
vectors.append(("rw2_bad_ref", "rw2", "corrupt", syms_raw + ld(5, ts2_raw([1, 13], True, 1, 0)), []))
vectors.append(("rw2_bad_ref_huge", "rw2", "corrupt", syms_raw + ld(5, ts2_raw([1, 2**32 + 1], True, 1, 0)), []))
vectors.append(("rw2_odd_refs", "rw2", "corrupt", syms_raw + ld(5, ts2_raw([1, 2, 3], True, 1, 0)), []))
vectors.append(("rw2_bad_symbol0", "rw2", "corrupt", ld(4, b"x") + ld(4, b"__name__"), []))
vectors.append(("rw2_bad_meta_ref", "rw2", "corrupt", syms_raw + ld(5, ld(5, tag(3, 0) + varint(99))), []))
vectors.append(("rw2_bad_exemplar_odd", "rw2", "corrupt", syms_raw + ld(5, ld(4, ld(1, varint(1)))), []))

# --- remote read ---


def rr_lines(queries, rtype):
    lines = ["rtype %d" % rtype]
    for (start, end, matchers, hints) in queries:
        lines.append("query %d %d %d %d" % (start, end, len(matchers), 1 if hints else 0))
        for t, n, v in matchers:
            lines.append("matcher %d %s %s" % (t, h(n), h(v)))
        if hints:
            step, func, hs, he, grouping, by, rng = hints
            lines.append("hints %d %s %d %d %d %d %d" % (step, h(func), hs, he, 1 if by else 0, rng, len(grouping)))
            for g in grouping:
                lines.append("group %s" % h(g))
    return lines


def make_rr(queries, accepted):
    rr = RR()
    for (start, end, matchers, hints) in queries:
        q = rr.queries.add()
        q.start_timestamp_ms = start
        q.end_timestamp_ms = end
        for t, n, v in matchers:
            m = q.matchers.add()
            m.type = t
            m.name = n
            m.value = v
        if hints:
            step, func, hs, he, grouping, by, rng = hints
            q.hints.step_ms = step
            q.hints.func = func
            q.hints.start_ms = hs
            q.hints.end_ms = he
            q.hints.grouping.extend(grouping)
            q.hints.by = by
            q.hints.range_ms = rng
    rr.accepted_response_types.extend(accepted)
    return rr.SerializeToString()


qa = [(1700000000000, 1700003600000, [(0, "__name__", "up"), (1, "job", "x"), (2, "instance", "a.*"),
                                      (3, "env", "dev|test")],
       (60000, "rate", 1699999700000, 1700003600000, ["job", "instance"], True, 300000))]
vectors.append(("rr_basic", "rr", "ok", make_rr(qa, [1, 0]), rr_lines(qa, 1)))
qb = [(0, 0, [], None), (-100, 100, [(0, "__name__", "")], None)]
vectors.append(("rr_default_samples", "rr", "ok", make_rr(qb, []), rr_lines(qb, 0)))
vectors.append(("rr_skip_unknown_type", "rr", "ok", make_rr(qb, [5, 0, 1]), rr_lines(qb, 0)))
vectors.append(("rr_none_supported", "rr", "invalid", make_rr(qb, [7]), []))
body = ld(1, tag(1, 0) + varint(10)) + tag(2, 0) + varint(9) + tag(2, 0) + varint(1) + unknown_all(70)
vectors.append(("rr_unpacked_types", "rr", "ok", body, rr_lines([(10, 0, [], None)], 1)))
vectors.append(("rr_bad_matcher_type", "rr", "invalid", ld(1, ld(3, tag(1, 0) + varint(4))), []))
vectors.append(("rr_bad_truncated", "rr", "corrupt", make_rr(qa, [1])[:-5], []))


def main():
    os.makedirs(OUT, exist_ok=True)
    exp = ["# generated by tests/integration/gen_rw_vectors.py; do not edit or regenerate"]
    for name, kind, expect, payload, lines in vectors:
        fn = name + ".sz"
        with open(os.path.join(OUT, fn), "wb") as f:
            f.write(snappy.compress(payload))
        exp.append("vector %s %s %s" % (fn, kind, expect))
        exp.extend(lines)
        exp.append("end")
    with open(os.path.join(OUT, "expected.txt"), "w") as f:
        f.write("\n".join(exp) + "\n")

    # Reference response encodings (uncompressed) for the encoder tests.
    resp = RESP()
    r0 = resp.results.add()
    for labels, samples in [([("__name__", "up"), ("job", "a")], [(1000, 1.0), (2000, f64(STALE)), (-5, 0.0), (0, -2.5)]),
                            ([("__name__", "x"), ("e", "")], [])]:
        ts = r0.timeseries.add()
        for n, v in labels:
            lb = ts.labels.add()
            lb.name = n
            lb.value = v
        for t, v in samples:
            s = ts.samples.add()
            s.timestamp = t
            s.value = v
    resp.results.add()
    with open(os.path.join(OUT, "rr_samples.pb"), "wb") as f:
        f.write(resp.SerializeToString())
    crr = CRR()
    cs = crr.chunked_series.add()
    for n, v in [("__name__", "up"), ("job", "a")]:
        lb = cs.labels.add()
        lb.name = n
        lb.value = v
    for mn, mx, data in [(1000, 2000, bytes(range(40))), (-3000, 0, b"\x00\x01")]:
        c = cs.chunks.add()
        c.min_time_ms = mn
        c.max_time_ms = mx
        c.type = 1
        c.data = data
    crr.query_index = 3
    with open(os.path.join(OUT, "rr_chunked.pb"), "wb") as f:
        f.write(crr.SerializeToString())
    print("wrote %d vectors to %s" % (len(vectors), OUT))


if __name__ == "__main__":
    sys.exit(main())
