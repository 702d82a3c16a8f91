#!/usr/bin/python3
"""Randomized differential PromQL test: random expressions over promdiff's data, evaluated
by tsdbd and by a real Prometheus 2.42 on the same samples, must agree (promdiff.compare).

The generator builds expressions from the data's own metric names, label names and
values: selectors with every matcher type, range functions (counter functions on
counters), aggregations with by/without and parameters, binary operators with scalars,
vector matching (on/ignoring, bool), math and label functions, offsets and subqueries,
nested to a bounded depth. Each expression is evaluated at two instants and over one
range. A fixed seed runs in CI (TS_SEED picks another, TS_RANDOM_QUERIES the count), so
speed work on the evaluator cannot silently change an answer; a failure prints the seed
and the expression to replay it.
"""
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import promdiff  # noqa: E402

SEED = int(os.environ.get("TS_SEED") or 20261207)
N_QUERIES = int(os.environ.get("TS_RANDOM_QUERIES") or 150)
TIME_BUDGET_S = 120

PROM_CONFIG = "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\nscrape_configs: []\n"

RANGE_FNS = ["avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
             "count_over_time", "last_over_time", "present_over_time", "stddev_over_time",
             "stdvar_over_time"]
COUNTER_FNS = ["rate", "increase", "irate", "resets", "changes"]
GAUGE_FNS = ["delta", "idelta", "deriv"]
AGGRS = ["sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"]
MATH = ["abs", "ceil", "floor", "sqrt", "exp", "ln", "log2", "log10", "sgn"]
ARITH = ["+", "-", "*", "/", "%"]
CMP = ["==", "!=", ">", "<", ">=", "<="]
RANGES = ["1m", "2m", "5m", "10m", "1h"]


class Gen:
    def __init__(self, rng, data):
        self.rng = rng
        self.names = {}
        for labels, _ in data:
            lab = dict(labels)
            d = self.names.setdefault(lab["__name__"], {})
            for k, v in lab.items():
                if k != "__name__":
                    d.setdefault(k, set()).add(v)
        self.metrics = sorted(self.names)

    def pick(self, xs):
        return self.rng.choice(list(xs))

    def selector(self, counter=None):
        r = self.rng
        names = [m for m in self.metrics if counter is None or
                 (m.endswith(("_total", "_count", "_sum", "_bucket")) == counter)] or self.metrics
        name = self.pick(names)
        labels = self.names[name]
        ms = []
        for _ in range(r.choice([0, 0, 1, 1, 2])):
            if not labels:
                break
            k = self.pick(sorted(labels))
            vals = sorted(labels[k])
            kind = r.random()
            if kind < 0.4:
                ms.append('%s="%s"' % (k, self.pick(vals)))
            elif kind < 0.6:
                ms.append('%s!="%s"' % (k, self.pick(vals)))
            elif kind < 0.85:
                sub = r.sample(vals, min(len(vals), r.randint(1, 2)))
                ms.append('%s=~"%s"' % (k, "|".join(v.replace(".", "\\\\.") for v in sub)))
            else:
                ms.append('%s!~"%s.*"' % (k, self.pick(vals)[:1]))
        return name + ("{%s}" % ", ".join(ms) if ms else ""), name

    def labels_of(self, name):
        return sorted(self.names.get(name, {}))

    def offset(self):
        return " offset %s" % self.pick(["1m", "5m", "30m"]) if self.rng.random() < 0.1 else ""

    def vector(self, depth=0):
        r = self.rng
        k = r.random() if depth < 3 else r.random() * 0.45
        if k < 0.15:
            s, _ = self.selector()
            return s + self.offset()
        if k < 0.45:
            counter = r.random() < 0.5
            s, _ = self.selector(counter)
            fn = self.pick(COUNTER_FNS if counter else RANGE_FNS + GAUGE_FNS)
            if fn == "quantile_over_time":
                return "quantile_over_time(%.2f, %s[%s])" % (r.random(), s, self.pick(RANGES))
            return "%s(%s[%s]%s)" % (fn, s, self.pick(RANGES), self.offset())
        if k < 0.62:
            inner = self.vector(depth + 1)
            op = self.pick(AGGRS + ["topk", "bottomk", "quantile", "count_values"])
            labels = self.any_labels(inner)
            grouping = ""
            if labels and r.random() < 0.7:
                grouping = " %s (%s)" % (self.pick(["by", "without"]),
                                         ", ".join(r.sample(labels, min(len(labels), r.randint(1, 2)))))
            if op in ("topk", "bottomk"):
                # Over a selection only: which of equal values topk keeps depends on its
                # input order, and Prometheus' range evaluation orders a nested result by
                # Go's random map iteration, so ties there have no one right answer.
                s, _ = self.selector()
                return "%s%s (%d, %s)" % (op, grouping, r.randint(1, 3), s)
            if op == "quantile":
                return "quantile%s (%.2f, %s)" % (grouping, r.random(), inner)
            if op == "count_values":
                return 'count_values%s ("v", %s)' % (grouping, inner)
            return "%s%s (%s)" % (op, grouping, inner)
        if k < 0.75:
            a = self.vector(depth + 1)
            op = self.pick(ARITH + CMP)
            sc = self.scalar()
            if op in CMP and r.random() < 0.3:
                op += " bool"
            return "(%s) %s %s" % (a, op, sc) if r.random() < 0.6 else "%s %s (%s)" % (sc, op, a)
        if k < 0.85:
            # vector matching between two shapes of one metric
            s, name = self.selector()
            labels = self.labels_of(name)
            a = "rate(%s[5m])" % s if name.endswith("_total") else s
            b = "%s(%s)" % (self.pick(["abs", "ceil"]), s)
            op = self.pick(ARITH + CMP)
            match = ""
            if labels and r.random() < 0.5:
                match = " %s (%s)" % (self.pick(["on", "ignoring"]), self.pick(labels))
            return "%s %s%s %s" % (a, op, match, b)
        if k < 0.92:
            fn = self.pick(MATH + ["clamp_min", "clamp_max", "round", "timestamp", "sort",
                                   "sort_desc", "absent", "label_replace"])
            inner = self.vector(depth + 1)
            if fn in ("clamp_min", "clamp_max"):
                return "%s(%s, %g)" % (fn, inner, r.choice([0, 1, 10, -1]))
            if fn == "round":
                return "round(%s, %g)" % (inner, r.choice([1, 0.5, 10]))
            if fn == "label_replace":
                return 'label_replace(%s, "copy", "$1", "__name__", "(.*)_.*")' % inner
            return "%s(%s)" % (fn, inner)
        # subquery over a range function
        s, name = self.selector(True)
        return "%s(rate(%s[5m])[%s:%s])" % (self.pick(["max_over_time", "avg_over_time"]), s,
                                             self.pick(["15m", "30m"]), self.pick(["1m", "2m", "3m"]))

    def any_labels(self, expr):
        for m in self.metrics:
            if m in expr:
                return self.labels_of(m)
        return []

    def scalar(self):
        r = self.rng
        k = r.random()
        if k < 0.7:
            return "%g" % r.choice([0, 1, 2, 0.5, 10, 100, -1, 1e3])
        if k < 0.85:
            return "time()"
        s, _ = self.selector()
        return "scalar(sum(%s))" % s

    def query(self):
        if self.rng.random() < 0.1:
            return "%s %s %s" % (self.scalar(), self.pick(ARITH), self.scalar())
        return self.vector()


class RandomPromqlTest(unittest.TestCase):
    def test_random_queries_agree(self):
        t0 = time.monotonic()
        end_s = int(time.time()) // 60 * 60 - 60
        data = promdiff.generate(end_s * 1000)
        s0 = end_s - promdiff.SPAN_MS // 1000
        srv = peers.Tsdbd([], name="promrandom")
        prom = peers.Prometheus(PROM_CONFIG, receiver=True)
        try:
            srv.start()
            prom.start()
            bodies = promdiff.time_slices(data)
            promdiff.load(promdiff.rw_sender(prom.port), bodies)
            promdiff.load(promdiff.rw_sender(srv.port), bodies)
            gen = Gen(random.Random(SEED), data)
            pc = promdiff.QueryClient(prom.port, "prometheus")
            tc = promdiff.QueryClient(srv.port, "tsdbd", promdiff.RAW)
            evals = [("instant", (end_s - 1234.5,)), ("instant", (s0 + 4000,)),
                     ("range", (s0 + 1800, s0 + 5400, 97))]
            differ, done, errors = [], 0, 0
            for i in range(N_QUERIES):
                if time.monotonic() - t0 > TIME_BUDGET_S:
                    break
                q = gen.query()
                for kind, args in evals:
                    a = (pc.instant if kind == "instant" else pc.range)(q, *args)
                    b = (tc.instant if kind == "instant" else tc.range)(q, *args)
                    errors += a.get("status") != "success"
                    d = promdiff.compare(a, b, q)
                    if d:
                        differ.append("%s %s: %s" % (q, kind, d[:300]))
                        break
                done += 1
            pc.close()
            tc.close()
        finally:
            prom.cleanup()
            srv.cleanup()
        print("\n==== random PromQL (seed %d): %d queries x %d evaluations (%d errors on "
              "Prometheus' side, compared too), %d differ" % (SEED, done, len(evals), errors,
                                                             len(differ)))
        for d in differ:
            print("DIFF   %s" % d)
        self.assertGreaterEqual(done, min(N_QUERIES, 50), "too few queries within the budget")
        self.assertFalse(differ, "seed %d: %d random queries answer differently from "
                         "Prometheus (see above)" % (SEED, len(differ)))


if __name__ == "__main__":
    peers.run_main()
