#!/usr/bin/python3
"""Every `decode` case of the InfluxDB line-protocol conformance corpus
($TS_TESTDATA/lineprotocol/corpus.json) through POST /api/v2/write of a real tsdbd.

Strict InfluxDB 2.x semantics, as the corpus has them: a case whose output is an
`error` must be answered 400 and store nothing; a case with a `result` must be answered
204 and store exactly its points as series `{measurement}_{field}` with the tags as
labels and label db = bucket, ints/uints as float64, bools 1/0, strings not stored.

Batching: one server, one request per case, each case in its own bucket (= its own db
label, so its own series: no result point in the corpus has a db tag), checked all at
once at the end through GET /api/v1/export when the server has it. Without export the
check is: total series and total samples stored equal the expectation exactly, and an
exact resend of every expected sample with a timestamp is a duplicate (so each is
stored bit-exact, and with the totals, nothing else is).

Deliberate deviations from the corpus, with reasons:
  - Lines without a timestamp take the server's clock, not the corpus' defaultTime (an
    HTTP request cannot carry a default time). Such points (time == defaultTime in the
    result) are checked to lie within the request's wall-clock window, floored to the
    precision, instead of at defaultTime.
  - Time is stored in milliseconds: the expected time is the corpus' ns floored to ms.
  - The server is started with --max-future 0 and --retention 0 (accept any time; the
    corpus has times from 1677 to 2262) and --max-labels 1024 (a case has 256 tags);
    these are limits of the store, not of the protocol.
  - A zero compares equal whatever its sign: the corpus' JSON writes the result of
    "-0." as 0 (its text form lost the sign bit), while the store keeps -0.0 exactly.
"""
import base64
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from peers import ingested, metric  # noqa: E402

PREC = {"1ns": ("ns", 1), "1µs": ("us", 1000), "1us": ("us", 1000), "1ms": ("ms", 1000000), "1s": ("s", 10 ** 9)}


def load_cases():
    with open(os.path.join(peers.TESTDATA, "lineprotocol", "corpus.json"), encoding="utf-8") as f:
        return json.load(f)["decode"]


def case_body(inp):
    t = inp["text"]
    if isinstance(t, dict):
        return base64.b64decode(t["binary"])
    return t.encode("utf-8")


def field_value(v):
    (kind, x), = v.items()
    if kind == "float":
        return float(x)
    if kind in ("int", "uint"):
        return float(int(x))
    if kind == "bool":
        return 1.0 if x else 0.0
    if kind == "string":
        return None
    raise ValueError(kind)


def expected_series(key, point):
    """[(labels tuple, value float)] for the numeric fields of a result point."""
    tags = {t["key"]: t["value"] for t in point["tags"] if t["value"] != "" and t["key"] != "__name__"}
    if "db" not in tags:
        tags["db"] = key
    out = []
    for f in point["fields"]:
        v = field_value(f["value"])
        if v is None:
            continue
        lab = dict(tags)
        lab["__name__"] = point["name"] + "_" + f["key"]
        out.append((tuple(sorted(lab.items())), v))
    return out


def same(got, want):
    if want == 0.0:
        return got == 0.0
    return peers.same_value(got, want)


class CorpusTest(unittest.TestCase):
    def test_corpus(self):
        cases = load_cases()
        srv = peers.Tsdbd(["--max-future", "0", "--retention", "0", "--max-labels", "1024",
                           "--out-of-order-window", "300y", "--sync", "never"], name="lpcorpus").start()
        self.addCleanup(srv.cleanup)
        cli = srv.client()
        self.addCleanup(cli.close)
        want = {}           # labels -> {t_ms: value}
        windows = {}        # labels -> (lo_ms, hi_ms) for points at the server's clock
        n_err = n_ok = 0
        failures = []
        t_start = time.monotonic()
        for key in sorted(cases):
            c = cases[key]
            inp, out = c["input"], c["output"]
            pname, unit = PREC[inp["precision"]]
            q = urllib.parse.urlencode({"org": "o", "bucket": key, "precision": pname})
            before = time.time_ns()
            r = cli.request("POST", "/api/v2/write?" + q, case_body(inp))
            after = time.time_ns()
            if "error" in out:
                n_err += 1
                if r.status != 400:
                    failures.append((key, "want 400, got %d %r" % (r.status, r.body[:200])))
                    continue
                try:
                    o = json.loads(r.body)
                    assert o["code"] == "invalid" and o["message"]
                except (ValueError, KeyError, AssertionError):
                    failures.append((key, "400 without the JSON error body: %r" % r.body[:200]))
                continue
            n_ok += 1
            if r.status != 204:
                failures.append((key, "want 204, got %d %r" % (r.status, r.body[:200])))
                continue
            dflt = inp["defaultTime"] // unit * unit
            for p in out["result"]:
                for lab, v in expected_series(key, p):
                    if p["time"] == dflt:
                        # no timestamp in the line: the server's clock, floored to the precision
                        lo = (before // unit * unit) // 1000000
                        hi = (after // unit * unit) // 1000000
                        windows[lab] = (lo, hi, v)
                    else:
                        want.setdefault(lab, {})[p["time"] // 1000000] = v
        cli.close()
        http_s = time.monotonic() - t_start
        self.assertEqual(n_err + n_ok, len(cases))
        self.assertFalse(failures, "%d cases answered wrongly, first: %s" % (len(failures), failures[:10]))
        n_want = sum(len(x) for x in want.values()) + len(windows)
        series_want = set(want) | set(windows)
        m = srv.metrics()
        self.assertEqual(ingested(m, "influx"), n_want)
        self.assertEqual(metric(m, "tsdb_series"), len(series_want))
        if peers.export_available(srv):
            how = "export"
            got = peers.export(srv, '{__name__=~".+"}')
            extra = set(got) - series_want
            self.assertFalse(extra, "series stored that no result case has: %s" % sorted(extra)[:5])
            for lab in series_want:
                self.assertIn(lab, got, lab)
                pts = got[lab]
                if lab in windows:
                    lo, hi, v = windows[lab]
                    self.assertEqual(len(pts), 1, (lab, pts))
                    t, gv = pts[0]
                    self.assertTrue(lo <= t <= hi, (lab, t, lo, hi))
                    self.assertTrue(same(gv, v), (lab, gv, v))
                else:
                    self.assertEqual(dict(pts).keys(), want[lab].keys(), lab)
                    for t, gv in pts:
                        self.assertTrue(same(gv, want[lab][t]), (lab, t, gv, want[lab][t]))
        else:
            how = "resend oracle (no export yet)"
            series = [(list(lab), sorted(pts.items())) for lab, pts in want.items()]
            dup, new, other, st = peers.resend_check(srv, series, via="jsonl")
            n_ts = sum(len(s) for _, s in series)
            self.assertEqual((dup, new, other), (n_ts, 0, 0), st)
        print("line-protocol corpus: %d cases (%d errors rejected, %d results stored: %d series, %d samples, "
              "%d at the server's clock), HTTP %.1fs, checked via %s" % (
                  len(cases), n_err, n_ok, len(series_want), n_want, len(windows), http_s, how))


if __name__ == "__main__":
    peers.run_main()
