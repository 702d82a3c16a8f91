"""Differential PromQL testing: tsdbd against a real Prometheus on identical data.

What is here:
  generate(end_ms)      deterministic (seeded) data ending at end_ms: counters with
                        resets, gauges, classic histogram buckets (cumulative, consistent,
                        with _sum and _count), gaps longer than the 5 m lookback, stale
                        markers, several jobs and instances, special values (NaN, +-Inf),
                        a series that ends, a series that starts late.
  time_slices()         the same data cut into remote-write requests by time (every
                        request covers one slice of time across all series, oldest
                        first), which is what Prometheus' head needs: per series in
                        order, never much older than what it already holds.
  load(send, slices)    sends every slice through send(body) -> status, asserts 2xx.
  load_queries(path)    the query set: one per line, '#' starts a comment; $START, $END,
                        $MID are replaced by unix seconds of the data's span.
  QueryClient           /api/v1/query and /api/v1/query_range against one server,
                        returning the decoded JSON envelope (for every status).
  compare(a, b, ...)    compares two envelopes: same status / errorType, same
                        resultType, vectors as sets keyed by label sets (ordered for
                        sort()/sort_desc()), matrices series by series and point by point,
                        values within relative 1e-6 (absolute 1e-9 near zero), NaN equal
                        to NaN, infinities exact. Returns None when equal, else a short
                        description of the first differences.
  RecordingProxy        a byte-for-byte HTTP forwarder on 127.0.0.1 that records the
                        bodies it forwards (to see what a peer asks a server).

Everything here is deterministic for a given end_ms; the data's shape (values and
offsets from its start) does not depend on end_ms at all.
"""
import json
import math
import os
import random
import re
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

STALE = ("bits", peers.STALE_BITS)
SCRAPE_MS = 15000
SPAN_MS = 9000 * 1000          # 2.5 h: under Prometheus' head compaction threshold (3 h)
SEED = 20240611
HIST_LE = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]


# ------------------------------------------------------------------------------ data


class _Series:
    def __init__(self, labels):
        self.labels = dict(labels)
        self.samples = []       # [(t_ms, float or ("bits", n))]

    def add(self, t, v):
        assert not self.samples or self.samples[-1][0] < t, (self.labels, t)
        self.samples.append((t, v))


def _times(rng, start, end, jitter_ms=1500):
    """Scrape times every 15 s with jitter, strictly increasing, within [start, end]."""
    out, i = [], 0
    while True:
        base = start + i * SCRAPE_MS
        if base > end:
            break
        t = base + (rng.randint(-jitter_ms, jitter_ms) if i else rng.randint(0, jitter_ms))
        t = min(t, end)
        if not out or t > out[-1]:
            out.append(t)
        i += 1
    return out


def generate(end_ms, seed=SEED):
    """Returns [(labels dict, [(t_ms, value)])] covering [end_ms - SPAN_MS, end_ms]."""
    rng = random.Random(seed)
    start = end_ms - SPAN_MS
    out = []

    # Instance c of job api is down (restarted) for 6 min at 40% of the span: its series
    # get stale markers at the first missed scrape, then resume from zero (counters reset).
    down_lo = start + int(SPAN_MS * 0.40)
    down_hi = down_lo + 6 * 60 * 1000
    # Instance b of job api has a 10 min gap without stale markers at 70%.
    gap_lo = start + int(SPAN_MS * 0.70)
    gap_hi = gap_lo + 10 * 60 * 1000

    def instance_state(inst, t):
        """'up', 'stale' (first sample after going down), 'down' or 'gap'."""
        if inst == "c:8080" and down_lo <= t < down_hi:
            return "down"
        if inst == "b:8080" and gap_lo <= t < gap_hi:
            return "gap"
        return "up"

    api_insts = ["a:8080", "b:8080", "c:8080"]
    batch_insts = ["x:9000", "y:9000"]

    # ---- counters: http_requests_total
    for job, insts, methods, codes in (("api", api_insts, ("get", "post"), ("200", "500")),
                                       ("batch", batch_insts, ("get",), ("200",))):
        for inst in insts:
            for method in methods:
                for code in codes:
                    s = _Series({"__name__": "http_requests_total", "job": job, "instance": inst,
                                 "method": method, "code": code})
                    rate = rng.uniform(0.5, 20.0) * (0.05 if code == "500" else 1.0)
                    resets = {rng.randrange(40, 560) for _ in range(rng.randint(0, 2))}
                    v, was_down = rng.randint(0, 1000), False
                    for i, t in enumerate(_times(rng, start, end_ms)):
                        st = instance_state(inst, t)
                        if st == "down":
                            if not was_down:
                                s.add(t, STALE)
                            was_down = True
                            continue
                        if st == "gap":
                            continue
                        if was_down or i in resets:
                            v, was_down = 0, False
                        v += max(0, int(rng.gauss(rate * 15, math.sqrt(rate * 15) + 1)))
                        s.add(t, float(v))
                    out.append(s)

    # ---- classic histogram: http_request_duration_seconds (job api)
    bounds = [float(x) for x in HIST_LE]
    for inst in api_insts:
        series_b = [_Series({"__name__": "http_request_duration_seconds_bucket", "job": "api",
                             "instance": inst, "le": le}) for le in HIST_LE]
        s_sum = _Series({"__name__": "http_request_duration_seconds_sum", "job": "api", "instance": inst})
        s_cnt = _Series({"__name__": "http_request_duration_seconds_count", "job": "api", "instance": inst})
        counts, total, was_down = [0] * len(bounds), 0.0, False
        scale = rng.uniform(0.1, 0.6)
        for t in _times(rng, start, end_ms):
            st = instance_state(inst, t)
            if st == "down":
                if not was_down:
                    for s in series_b + [s_sum, s_cnt]:
                        s.add(t, STALE)
                was_down = True
                continue
            if st == "gap":
                continue
            if was_down:
                counts, total, was_down = [0] * len(bounds), 0.0, False
            for _ in range(rng.randint(0, 12)):
                d = rng.expovariate(1.0 / scale)
                total += d
                for k, b in enumerate(bounds):
                    if d <= b:
                        counts[k] += 1
            for k, s in enumerate(series_b):
                s.add(t, float(counts[k]))
            s_sum.add(t, total)
            s_cnt.add(t, float(counts[-1]))
        out.extend(series_b + [s_sum, s_cnt])

    # ---- up and build_info for every instance
    for job, insts in (("api", api_insts), ("batch", batch_insts)):
        for k, inst in enumerate(insts):
            up = _Series({"__name__": "up", "job": job, "instance": inst})
            info = _Series({"__name__": "build_info", "job": job, "instance": inst,
                            "version": "1.%d.0" % (k % 2), "goversion": "go1.19"})
            for t in _times(rng, start, end_ms):
                st = instance_state(inst, t)
                up.add(t, 0.0 if st == "down" else 1.0)
                if st == "up":
                    info.add(t, 1.0)
            out.extend([up, info])

    # ---- gauges: node_temperature_celsius (job node, 4 instances)
    for k in range(4):
        inst = "node-%d:9100" % k
        s = _Series({"__name__": "node_temperature_celsius", "job": "node", "instance": inst,
                     "zone": "z%d" % (k % 2)})
        phase, base = rng.uniform(0, 6.28), rng.uniform(30, 60)
        times = _times(rng, start, end_ms)
        stale_at = start + int(SPAN_MS * 0.55)
        for t in times:
            rel = (t - start) / 1000.0
            if k == 1 and start + int(SPAN_MS * 0.25) <= t < start + int(SPAN_MS * 0.25) + 11 * 60000:
                continue                                   # 11 min gap, no stale marker
            if k == 2 and stale_at <= t < stale_at + 8 * 60000:
                if not s.samples or s.samples[-1][1] != STALE:
                    s.add(t, STALE)                        # stale, then 8 min without samples
                continue
            v = base + 8 * math.sin(rel / 900.0 + phase) + rng.gauss(0, 0.7)
            s.add(t, round(v, 3))
        out.append(s)

    # ---- gauge with negatives and zeros: account_balance (job billing)
    for k in range(3):
        s = _Series({"__name__": "account_balance", "job": "billing", "instance": "bill-%d" % k,
                     "currency": ("eur", "usd", "eur")[k]})
        v = rng.uniform(-50, 50)
        for t in _times(rng, start, end_ms):
            v += rng.gauss(0, 5)
            if rng.random() < 0.05:
                v = 0.0
            s.add(t, round(v, 2))
        out.append(s)

    # ---- integer gauge for count_values and topk ties: queue_length (job worker)
    for k in range(4):
        s = _Series({"__name__": "queue_length", "job": "worker", "instance": "w%d" % k,
                     "queue": "q%d" % (k % 2)})
        for t in _times(rng, start, end_ms):
            s.add(t, float(rng.randint(0, 5)))
        out.append(s)

    # ---- a series that ends (stale marker at 60 %), one that starts late (at 50 %)
    s = _Series({"__name__": "batch_progress_ratio", "job": "cron", "instance": "cron-1"})
    times = _times(rng, start, end_ms)
    end_at = start + int(SPAN_MS * 0.6)
    for t in times:
        if t >= end_at:
            s.add(t, STALE)
            break
        s.add(t, round((t - start) / (end_at - start), 6))
    out.append(s)
    s = _Series({"__name__": "late_jobs_total", "job": "cron", "instance": "cron-1"})
    v = 0
    for t in _times(rng, start + SPAN_MS // 2, end_ms):
        v += rng.randint(0, 3)
        s.add(t, float(v))
    out.append(s)

    # ---- large values (precision) and a wall-clock gauge for the date functions
    for dev in ("sda", "sdb"):
        s = _Series({"__name__": "disk_used_bytes", "job": "node", "instance": "node-0:9100", "device": dev})
        v = rng.uniform(1e11, 1e12)
        for t in _times(rng, start, end_ms):
            v += rng.uniform(-1e6, 5e7)
            s.add(t, float(int(v)))
        out.append(s)
    s = _Series({"__name__": "last_boot_time_seconds", "job": "node", "instance": "node-0:9100"})
    for t in _times(rng, start, end_ms):
        s.add(t, float(start // 1000 - 3 * 86400 - 7 * 3600 + 1234))
    out.append(s)

    # ---- samples exactly on the 15 s grid (no jitter): evaluation times and the 5 m
    # lookback and range edges fall exactly on samples, so the closed ends matter.
    # sparse_gauge has a sample every 5 min exactly, every other one missing after 60 %.
    s = _Series({"__name__": "aligned_gauge", "job": "grid", "instance": "g1"})
    c = _Series({"__name__": "aligned_requests_total", "job": "grid", "instance": "g1"})
    sp = _Series({"__name__": "sparse_gauge", "job": "grid", "instance": "g1"})
    v = 0.0
    for i in range(SPAN_MS // SCRAPE_MS + 1):
        t = start + i * SCRAPE_MS
        s.add(t, float(i % 17) - 4.0)
        v += i % 5
        c.add(t, v)
        if i % 20 == 0 and not (i > 0.6 * SPAN_MS / SCRAPE_MS and i % 40 == 20):
            sp.add(t, float(i // 20))
    out.extend([s, c, sp])
    # aligned_stale: on the grid, a stale marker exactly at +3000 s, nothing until a
    # sample exactly 5 min later; another stale marker at +6000 s followed by a sample
    # 15 s later.
    s = _Series({"__name__": "aligned_stale", "job": "grid", "instance": "g2"})
    for i in range(SPAN_MS // SCRAPE_MS + 1):
        rel = i * SCRAPE_MS
        if rel in (3000000, 6000000):
            s.add(start + rel, STALE)
        elif 3000000 < rel < 3300000:
            continue
        else:
            s.add(start + rel, float(i % 9))
    out.append(s)

    # ---- a broken classic histogram: non-monotonic buckets on one instance, no +Inf
    # bucket on the other (histogram_quantile's repairs and NaN answers)
    for inst, les in (("h1", ("0.1", "1", "10", "+Inf")), ("h2", ("0.1", "1", "10"))):
        series_b = [_Series({"__name__": "broken_seconds_bucket", "job": "grid", "instance": inst, "le": le})
                    for le in les]
        counts = [0.0] * len(les)
        for t in _times(rng, start, end_ms):
            for k in range(len(les)):
                counts[k] += rng.randint(0, 4) + (2 * k if inst == "h2" else 0)
            for k, sb in enumerate(series_b):
                sb.add(t, counts[k])
        out.extend(series_b)

    # ---- special values: NaN (not stale), +Inf, -Inf, zeros, small numbers
    kinds = {"nan": lambda i: float("nan") if i % 7 == 3 else float(i % 5),
             "inf": lambda i: float("inf") if i % 11 == 5 else float(i % 3),
             "neginf": lambda i: float("-inf") if i % 13 == 2 else -1.0 * (i % 4),
             "tiny": lambda i: 1e-300 * (i % 3)}
    for kind, f in kinds.items():
        s = _Series({"__name__": "special_values", "job": "edge", "kind": kind})
        for i, t in enumerate(_times(rng, start, end_ms)):
            s.add(t, f(i))
        out.append(s)

    return [(s.labels, s.samples) for s in out]


def time_slices(data, slice_ms=600 * 1000):
    """Cuts data into remote-write 1.0 bodies, one per time slice, oldest first."""
    lo = min(smp[0][0] for _, smp in data if smp)
    hi = max(smp[-1][0] for _, smp in data if smp)
    bodies = []
    t = lo
    while t <= hi:
        part = []
        for labels, samples in data:
            pts = [(ts, v) for ts, v in samples if t <= ts < t + slice_ms]
            if pts:
                part.append((labels, pts))
        if part:
            bodies.append(peers.sz(peers.encode_rw1([(sorted(l.items()), p) for l, p in part])))
        t += slice_ms
    return bodies


def n_samples(data):
    return sum(len(s) for _, s in data)


def load(send, bodies):
    """send(body) -> Resp for every body; raises AssertionError unless all are 2xx."""
    for i, b in enumerate(bodies):
        r = send(b)
        if not 200 <= r.status < 300:
            raise AssertionError("remote write %d/%d answered %r" % (i + 1, len(bodies), r))


def rw_sender(port, path="/api/v1/write"):
    def send(body):
        return peers.http_request("127.0.0.1", port, "POST", path, body, peers.rw1_headers(), timeout=60)
    return send


# --------------------------------------------------------------------------- queries


def load_queries(path, span):
    """Query lines with $START/$END/$MID replaced (span = (start_s, end_s)); returns
    [(line number, query)]."""
    start_s, end_s = span
    subst = {"$START": "%d" % start_s, "$END": "%d" % end_s, "$MID": "%d" % ((start_s + end_s) // 2)}
    out = []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            for k, v in subst.items():
                line = line.replace(k, v)
            out.append((no, line))
    return out


class QueryClient:
    """extra: parameters added to every query (tsdbd's max_source_resolution=raw, so that
    a range query with a large step over a closed partition reads raw samples as
    Prometheus does instead of a downsampled tier, tsdbd's default "auto")."""

    def __init__(self, port, name, extra=None):
        self.client = peers.Client(port, timeout=60)
        self.name = name
        self.extra = dict(extra or {})

    def _get(self, path, params):
        params = dict(params, **self.extra)
        r = self.client.request("GET", path + "?" + urllib.parse.urlencode(params))
        try:
            o = r.json()
        except ValueError:
            o = {"status": "unparsable", "body": r.text[:300]}
        o["_http"] = r.status
        return o

    def instant(self, q, t):
        return self._get("/api/v1/query", {"query": q, "time": _fmt_time(t)})

    def range(self, q, start, end, step):
        return self._get("/api/v1/query_range", {"query": q, "start": _fmt_time(start),
                                                 "end": _fmt_time(end), "step": "%g" % step})

    def close(self):
        self.client.close()


# What a tsdbd client of a differential comparison adds to its queries.
RAW = {"max_source_resolution": "raw"}


def _fmt_time(t):
    return ("%.3f" % t).rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- compare

REL_TOL = 1e-6
ABS_TOL = 1e-9


def close(a, b):
    """a, b: the API's value strings."""
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    d = abs(x - y)
    return d <= ABS_TOL or d <= REL_TOL * max(abs(x), abs(y))


def _key(metric):
    return tuple(sorted(metric.items()))


def _fmt_labels(key):
    name = dict(key).get("__name__", "")
    rest = ",".join('%s="%s"' % (k, v) for k, v in key if k != "__name__")
    return "%s{%s}" % (name, rest)


def _ordered(query):
    q = query.replace(" ", "")
    return q.startswith("sort(") or q.startswith("sort_desc(")


def compare(expected, actual, query, limit=4):
    """expected: Prometheus' envelope, actual: tsdbd's. None when equal, else a text."""
    es, as_ = expected.get("status"), actual.get("status")
    if es != "success" or as_ != "success":
        if es == as_ == "error" and expected.get("errorType") == actual.get("errorType"):
            return None
        return "status/errorType: expected %s/%s (%s) got %s/%s (%s)" % (
            es, expected.get("errorType"), str(expected.get("error"))[:120],
            as_, actual.get("errorType"), str(actual.get("error"))[:120])
    ed, ad = expected["data"], actual["data"]
    if ed["resultType"] != ad["resultType"]:
        return "resultType: expected %s got %s" % (ed["resultType"], ad["resultType"])
    rt = ed["resultType"]
    er, ar = ed["result"], ad["result"]
    if rt == "scalar" or rt == "string":
        if er[0] != ar[0]:
            return "time: expected %s got %s" % (er[0], ar[0])
        ok = close(er[1], ar[1]) if rt == "scalar" else er[1] == ar[1]
        return None if ok else "value: expected %s got %s" % (er[1], ar[1])
    diffs = []
    if rt == "vector":
        em = {_key(s["metric"]): s["value"] for s in er}
        am = {_key(s["metric"]): s["value"] for s in ar}
        if len(am) != len(ar):
            diffs.append("tsdbd returned duplicate label sets")
        for k in sorted(set(em) - set(am))[:limit]:
            diffs.append("missing %s = %s" % (_fmt_labels(k), em[k][1]))
        for k in sorted(set(am) - set(em))[:limit]:
            diffs.append("extra %s = %s" % (_fmt_labels(k), am[k][1]))
        for k in sorted(set(em) & set(am)):
            (et, ev), (at, av) = em[k], am[k]
            if et != at or not close(ev, av):
                diffs.append("%s: expected %s@%s got %s@%s" % (_fmt_labels(k), ev, et, av, at))
                if len(diffs) >= limit:
                    break
        if not diffs and _ordered(query):
            ev = [s["value"][1] for s in er]
            av = [s["value"][1] for s in ar]
            if len(ev) == len(av) and not all(close(x, y) for x, y in zip(ev, av)):
                diffs.append("order: expected %s got %s" % (ev[:8], av[:8]))
    else:  # matrix
        em = {_key(s["metric"]): s["values"] for s in er}
        am = {_key(s["metric"]): s["values"] for s in ar}
        if len(am) != len(ar):
            diffs.append("tsdbd returned duplicate label sets")
        for k in sorted(set(em) - set(am))[:limit]:
            diffs.append("missing series %s (%d points from %s)" % (_fmt_labels(k), len(em[k]), em[k][0][0]))
        for k in sorted(set(am) - set(em))[:limit]:
            diffs.append("extra series %s (%d points from %s)" % (_fmt_labels(k), len(am[k]), am[k][0][0]))
        for k in sorted(set(em) & set(am)):
            ep = {p[0]: p[1] for p in em[k]}
            ap = {p[0]: p[1] for p in am[k]}
            bad = []
            for t in sorted(set(ep) | set(ap)):
                if t not in ap:
                    bad.append("t=%s missing (expected %s)" % (t, ep[t]))
                elif t not in ep:
                    bad.append("t=%s extra %s" % (t, ap[t]))
                elif not close(ep[t], ap[t]):
                    bad.append("t=%s expected %s got %s" % (t, ep[t], ap[t]))
            if bad:
                diffs.append("%s: %d points differ, first: %s" % (_fmt_labels(k), len(bad), "; ".join(bad[:3])))
                if len(diffs) >= limit:
                    break
    return "; ".join(diffs[:limit]) if diffs else None


def identical(expected, actual):
    """True when both envelopes carry the same result text for text (value strings and
    timestamps alike, series order aside), or the same errorType."""
    if expected.get("status") != "success" or actual.get("status") != "success":
        return expected.get("status") == actual.get("status") and \
            expected.get("errorType") == actual.get("errorType")

    def canon(d):
        r = d["result"]
        if d["resultType"] in ("vector", "matrix"):
            r = sorted(json.dumps(x, sort_keys=True) for x in r)
        return d["resultType"], r
    return canon(expected["data"]) == canon(actual["data"])


# ----------------------------------------------------------------------------- proxy


class RecordingProxy:
    """Forwards every POST/GET byte for byte to 127.0.0.1:target_port and records
    (path, request headers, request body) of each one."""

    def __init__(self, target_port):
        self.target = target_port
        self.requests = []
        proxy = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 20   # the answer leaves in one write, not headers then body

            def log_message(self, *a):
                pass

            def _forward(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                hdr = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection", "content-length")}
                proxy.requests.append((self.path, dict(hdr), body))
                r = peers.http_request("127.0.0.1", proxy.target, method, self.path, body, hdr, timeout=60)
                self.send_response(r.status)
                for k, v in r.headers.items():
                    if k not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.body)))
                self.end_headers()
                self.wfile.write(r.body)

            def do_POST(self):
                self._forward("POST")

            def do_GET(self):
                self._forward("GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
