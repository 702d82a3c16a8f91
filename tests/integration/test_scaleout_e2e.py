#!/usr/bin/python3
"""End to end: tsdbd scaled out behind a stock Prometheus (Debian's 2.42), as
docs/scale-out.md describes it.

Writing. Three tsdbd shards and one "single" tsdbd. A writer Prometheus scrapes a real
prometheus-node-exporter and itself every second for SCRAPE_S seconds and remote-writes
through one queue per shard, each with the write_relabel_configs

    - {source_labels: [__name__, instance, job], modulus: 3, target_label: __tmp_shard, action: hashmod}
    - {source_labels: [__tmp_shard], regex: "<N>", action: keep}
    - {regex: __tmp_shard, action: labeldrop}

and one queue to the single tsdbd with everything. A fifth queue has shard 0's rules
without the labeldrop, to a tsdbd of its own: write relabelling, unlike scrape
relabelling, does not remove labels starting with "__", so there every series carries
__tmp_shard="0" (and would not be the single's series). Scraping is then stopped by a
config reload that keeps the jobs but drops their targets, so the scrape loops write
their end-of-run stale markers and nothing enters the WAL after them; the test waits
until every queue has nothing pending and every tsdbd counted
(tsdb_samples_ingested_total) exactly the samples its queue sent
(prometheus_remote_storage_samples_total), then stops the writer with SIGTERM (exit 0).
Checked: the shards' counts add up to the single's; each shard queue's sent plus
relabel-dropped samples are the single queue's; nothing failed, was retried, rejected or
duplicated; metadata is not relabelled, so every shard holds the metadata of every
metric family, also of those whose series live elsewhere.

Placement. /api/v1/series with match[]={__name__=~".+"}: the shards hold disjoint,
non-empty series sets whose union is the single tsdbd's set; every (__name__, instance,
job) lives on exactly one shard, the one computed here from the MD5 of the values
joined by ";" (last 8 bytes, big-endian, modulo 3): placement can be predicted offline.

Reading. Reader Prometheus servers with an empty TSDB and no scrape targets:
- "fan-out": remote_read to each shard with read_recent: true;
- "single": remote_read to the single tsdbd.
QUERIES (rate, increase, irate, sum by, count, count_values, topk, bottomk,
histogram_quantile over prometheus_http_request_duration_seconds_bucket, label_replace,
absent, regex and negative selectors, vector matching, ...) at two fixed instants and
over one range inside the scraped window answer the same through both readers and
through the single tsdbd's own /api/v1/query(_range) (promdiff.compare: same label sets,
values within relative 1e-6, NaN equal); so do a few queries across the stale markers
(the series end in all three). Every shard is asked.
- "required": remote_read entries to the shards with required_matchers: {job: node}:
a selector with job="node" is answered (as the fan-out reader answers it); a selector
for job="prometheus", with no job matcher, or with job=~"node" (only an equality
matcher counts) gets an empty answer, and the shards' remote read counters
(tsdb_http_requests_total{handler="remote_read"}) do not move: Prometheus did not ask.
- "extlabels": global.external_labels: {region: eu}, remote_read to the shards with the
default filter_external_labels (true). Prometheus adds region="eu" as an equality
matcher to every remote read query (seen in the ReadRequests through a recording proxy
in front of shard 0); tsdbd stores no region label, so it selects nothing and every
query comes back empty: status success, no error, no warning. This is what users hit
when their query Prometheus has external labels that the written data does not carry.
A selector with a matcher of its own for the label (region=~".*") is sent as written
and answered.
- "extlabels-nofilter": the same with filter_external_labels: false: no region matcher is
sent and the answers are the fan-out reader's (Prometheus does not add its external
labels to query API results).

A moved series. The same series written to shard 0 and shard 1 with an overlapping
stretch (what a change of the shard count does): the fan-out reader returns it as one
series with every sample once.

A shard down. With shard 2 stopped, the fan-out reader (2.42) still answers with status
"success" and HTTP 200: the two live shards' series only, plus a warning naming the
failed remote read; no error. After the shard is restarted on its data, the full answer
is back without warnings.

Skipped (unittest.SkipTest) only when /usr/bin/prometheus or the node exporter is
missing. Every process is started here and stopped by its PID; every wait is bounded.
"""
import hashlib
import os
import signal
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
import promdiff  # noqa: E402
import tsdbtest  # noqa: E402
from peers import metric  # noqa: E402

N_SHARDS = 3
SCRAPE_S = 24           # scraping time: enough for [10s] rate windows at two instants
DRAIN_S = 30            # at most this long for the queues to empty after scraping stops

QUEUE = """    remote_timeout: 10s
    metadata_config:
      send_interval: 2s
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 2000
      min_backoff: 100ms
      max_backoff: 1s
"""

SHARD_RW = """  - url: http://127.0.0.1:%(port)d/api/v1/write
    name: shard%(n)d
""" + QUEUE + """    write_relabel_configs:
      - source_labels: [__name__, instance, job]
        modulus: %(mod)d
        target_label: __tmp_shard
        action: hashmod
      - source_labels: [__tmp_shard]
        regex: "%(n)d"
        action: keep
%(drop)s"""

LABELDROP = """      - regex: __tmp_shard
        action: labeldrop
"""

SINGLE_RW = """  - url: http://127.0.0.1:%(port)d/api/v1/write
    name: single
""" + QUEUE

WRITER = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
%(scrape)s
remote_write:
%(rw)s"""

SCRAPE = """  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:{PROM_PORT}']
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:%d']
"""

# The same jobs without targets: their scrape loops stop and write stale markers.
NO_TARGETS = """  - job_name: prometheus
    static_configs: []
  - job_name: node
    static_configs: []
"""

READER = """
global:
  scrape_interval: 1m
  evaluation_interval: 1m
%(ext)s
scrape_configs: []
remote_read:
%(rr)s"""

RR = """  - url: http://127.0.0.1:%(port)d/api/v1/read
    name: %(name)s
    read_recent: true
    remote_timeout: 30s
%(extra)s"""

# Over what was scraped: counters, gauges and classic histograms of both jobs. Windows of
# 10 s fit inside the scraped window at both instants and over the whole range.
QUERIES = [
    'up',
    'count by (job) ({__name__=~".+"})',
    'count({__name__=~"node_.+", job="node"})',
    'rate(prometheus_http_requests_total[10s])',
    'sum by (job) (rate(process_cpu_seconds_total[10s]))',
    'increase(prometheus_tsdb_head_samples_appended_total[10s])',
    'irate(node_cpu_seconds_total{mode=~"user|system"}[5s])',
    'sum by (mode) (rate(node_cpu_seconds_total[10s]))',
    'count(node_cpu_seconds_total{mode!~"idle|iowait"})',
    'topk(3, {__name__=~"node_memory_.+_bytes"})',
    'bottomk(2, go_goroutines)',
    'histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s])))',
    'histogram_quantile(0.5, sum by (le, handler) (prometheus_http_request_duration_seconds_bucket))',
    'label_replace(up, "port", "$1", "instance", ".*:([0-9]+)")',
    'absent(nonexistent_metric_total)',
    'absent(up{job="node"})',
    '{__name__=~"node_load(1|5|15)"}',
    'max by (job) (scrape_duration_seconds) > 0',
    'count_values("v", up)',
    'avg_over_time(node_load1[10s]) + on (instance) group_left node_procs_running',
    'sum without (instance) (rate(node_vmstat_pgfault[10s]))',
    'scrape_samples_scraped{job="node"} / on () group_left scalar(sum(scrape_samples_scraped))',
    'delta(process_resident_memory_bytes[10s])',
    'max_over_time(prometheus_tsdb_head_series[10s]) - min_over_time(prometheus_tsdb_head_series[10s])',
]

# Queries that must not be empty at either instant (the data is there).
NONEMPTY = {'up', 'count by (job) ({__name__=~".+"})', 'rate(prometheus_http_requests_total[10s])',
            'histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s])))',
            'topk(3, {__name__=~"node_memory_.+_bytes"})', 'absent(nonexistent_metric_total)',
            'label_replace(up, "port", "$1", "instance", ".*:([0-9]+)")'}


def shard_of(*values, modulus=N_SHARDS):
    """The shard Prometheus' hashmod gives source label values (a missing label is "")."""
    h = hashlib.md5(";".join(v or "" for v in values).encode()).digest()
    return int.from_bytes(h[8:], "big") % modulus


def _key(labels):
    return tuple(sorted(labels.items()))


def _sum_by(m, name, label):
    """{label value: value} of every sample of `name` in parsed /metrics m."""
    out = {}
    for (n, labels), v in m.items():
        if n == name:
            lv = dict(labels).get(label)
            out[lv] = out.get(lv, 0.0) + v
    return out


def _result(env):
    assert env.get("status") == "success", env
    return env["data"]["result"]


class ScaleOutE2ETest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for path in (peers.PROMETHEUS, peers.NODE_EXPORTER):
            if not os.access(path, os.X_OK):
                raise unittest.SkipTest("%s is not installed" % path)
        cls.t0 = time.monotonic()
        cls.shards = [peers.Tsdbd([], name="shard%d" % i) for i in range(N_SHARDS)]
        cls.single = peers.Tsdbd([], name="single")
        cls.nodrop = peers.Tsdbd([], name="nodrop")
        cls.node = None
        cls.writer = None
        cls.readers = {}
        cls.proxies = []
        cls.timeline = []
        try:
            for s in cls.shards + [cls.single, cls.nodrop]:
                s.start()
            cls.node = peers.NodeExporter().start()
            cls._write()
            cls._start_readers()
        except BaseException:
            cls._cleanup()
            raise

    # ---------------------------------------------------------------- set-up

    @classmethod
    def _writer_config(cls, scrape):
        rw = "".join(SHARD_RW % {"port": s.port, "n": i, "mod": N_SHARDS, "drop": LABELDROP}
                     for i, s in enumerate(cls.shards))
        rw += SINGLE_RW % {"port": cls.single.port}
        # Shard 0's relabelling without the labeldrop, to a tsdbd of its own.
        rw += SHARD_RW.replace("name: shard%(n)d", "name: nodrop") % {
            "port": cls.nodrop.port, "n": 0, "mod": N_SHARDS, "drop": ""}
        return WRITER % {"scrape": scrape, "rw": rw}

    @classmethod
    def _write(cls):
        """Scrapes for SCRAPE_S s, stops scraping, waits for the queues to drain, stops the
        writer. Leaves in cls.window (first s, last s) the scraped window and in
        cls.stale_at a time (s) when every series has ended with a stale marker."""
        cls.writer = peers.Prometheus(cls._writer_config(SCRAPE % cls.node.port))
        cls.writer.start()
        t_start = time.time()
        deadline = time.monotonic() + SCRAPE_S + 5
        while time.time() < t_start + SCRAPE_S and time.monotonic() < deadline:
            time.sleep(0.25)
            if cls.writer.proc.poll() is not None:
                raise AssertionError("writer Prometheus exited:\n" + cls.writer.log_tail())
        targets = cls.writer.api("/api/v1/targets")["activeTargets"]
        cls.targets_health = sorted(t["health"] for t in targets)
        # Stop scraping: reload with the jobs but no targets. Once the scrape manager has
        # dropped the targets (about a second here), each loop writes stale markers for
        # its series, stamped with its next tick, two ticks later. (Removing the jobs
        # instead would stop the loops without stale markers.)
        with open(os.path.join(cls.writer.tmp, "prometheus.yml"), "w") as f:
            f.write(cls._writer_config(NO_TARGETS))
        t_reload = time.time()
        os.kill(cls.writer.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and cls.writer.api("/api/v1/targets")["activeTargets"]:
            time.sleep(0.2)
        t_gone = time.time()
        cls.timeline.append("scraped %.1fs, targets gone %.1fs after the reload" % (
            t_gone - t_start, t_gone - t_reload))
        cls.window = (int(t_start) + 1, int(t_reload))
        cls.stale_at = int(t_gone) + 6

        # Drain: every queue empty, each tsdbd's ingested count equal to what its queue
        # sent, the same in two polls 1 s apart, and at least 4 s after the targets left
        # (the stale markers are written by then).
        names = ["shard%d" % i for i in range(N_SHARDS)] + ["single", "nodrop"]
        servers = cls.shards + [cls.single, cls.nodrop]
        last, stable_since = None, None
        deadline = time.monotonic() + DRAIN_S
        drained = False
        while time.monotonic() < deadline:
            wm = peers.parse_metrics(cls.writer.get("/metrics").text)
            sent = _sum_by(wm, "prometheus_remote_storage_samples_total", "remote_name")
            pending = _sum_by(wm, "prometheus_remote_storage_samples_pending", "remote_name")
            got = [peers.ingested(s.metrics(), "remote_write") for s in servers]
            state = (tuple(sent.get(n, -1) for n in names), tuple(got))
            ok = (time.time() > t_gone + 4 and all(pending.get(n, 1) == 0 for n in names)
                  and all(sent.get(n, -1) == g for n, g in zip(names, got)))
            if ok and state == last:
                if time.monotonic() - stable_since >= 1.0:
                    drained = True
                    break
            else:
                last, stable_since = (state if ok else None), time.monotonic()
            time.sleep(0.5)
        cls.writer_metrics = wm
        cls.drained = drained
        cls.timeline.append("drained %s %.1fs after the reload" % (drained, time.time() - t_reload))
        cls.writer_rc = cls.writer.proc.poll()
        if cls.writer_rc is None:
            cls.writer.stop()   # SIGTERM: queues flush, then exit
            cls.writer_rc = cls.writer.proc.returncode
        cls.writer_log = cls.writer.log_tail()
        cls.writer.cleanup()
        cls.writer = None

    @classmethod
    def _reader(cls, name, targets, extra="", ext=""):
        """A reader Prometheus remote-reading from [(name, port)] with `extra` lines in
        every remote_read entry and `ext` in global."""
        rr = "".join(RR % {"port": port, "name": n, "extra": extra} for n, port in targets)
        p = peers.Prometheus(READER % {"rr": rr, "ext": ext})
        cls.readers[name] = p
        p.start()
        return p

    @classmethod
    def _start_readers(cls):
        shard_targets = [("shard%d" % i, s.port) for i, s in enumerate(cls.shards)]
        cls._reader("fanout", shard_targets)
        cls._reader("single", [("single", cls.single.port)])
        cls._reader("required", shard_targets, extra="    required_matchers:\n      job: node\n")
        # Shard 0 behind a recording proxy for the two external-label readers, so the
        # ReadRequests they send can be read.
        ext = "  external_labels:\n    region: eu"
        for name, extra in (("extlabels", ""), ("extlabels-nofilter", "    filter_external_labels: false\n")):
            proxy = promdiff.RecordingProxy(cls.shards[0].port).start()
            cls.proxies.append(proxy)
            targets = [("shard0", proxy.port)] + shard_targets[1:]
            cls._reader(name, targets, extra=extra, ext=ext)
        cls.ext_proxy = dict(zip(("extlabels", "extlabels-nofilter"), cls.proxies))

    @classmethod
    def _cleanup(cls):
        for p in list(cls.readers.values()) + [cls.writer, cls.node]:
            if p is not None:
                p.cleanup()
        for x in cls.proxies:
            x.stop()
        for s in cls.shards + [cls.single, cls.nodrop]:
            s.cleanup()

    @classmethod
    def tearDownClass(cls):
        for p in cls.readers.values():
            p.stop()
        bad = []
        for s in cls.shards + [cls.single, cls.nodrop]:
            rc = s.stop()
            if rc != 0:
                bad.append("%s exited with %s:\n%s" % (s.tmp, rc, s.log_tail()))
        cls._cleanup()
        print("scale-out e2e: %s; total %.1fs" % ("; ".join(cls.timeline), time.monotonic() - cls.t0))
        if bad:
            raise AssertionError("\n".join(bad))

    # ---------------------------------------------------------------- helpers

    def query(self, who, q, t=None, rng=None):
        """An envelope from reader `who` (a name in self.readers) or a tsdbd (a Server)."""
        port = self.readers[who].port if isinstance(who, str) else who.port
        c = promdiff.QueryClient(port, str(who))
        try:
            return c.range(q, *rng) if rng else c.instant(q, t)
        finally:
            c.close()

    def read_counts(self, servers=None):
        """Remote read requests each tsdbd has answered (any status)."""
        out = []
        for s in servers or self.shards:
            m = s.metrics()
            out.append(sum(v for (n, labels), v in m.items()
                           if n == "tsdb_http_requests_total" and ("handler", "remote_read") in labels))
        return out

    def series(self, srv):
        lo, hi = self.window
        r = srv.get("/api/v1/series?" + urllib.parse.urlencode(
            {"match[]": '{__name__=~".+"}', "start": lo - 120, "end": hi + 120}))
        self.assertEqual(r.status, 200, r)
        return {_key(x) for x in r.json()["data"]}

    def evaluations(self):
        lo, hi = self.window
        return [("instant@end-3", {"t": hi - 3}), ("instant@start+15", {"t": lo + 15}),
                ("range[start+11,end-3]/2", {"rng": (lo + 11, hi - 3, 2)})]

    # ---------------------------------------------------------------- writes

    def test_1_writes_landed(self):
        self.assertTrue(self.drained, "queues did not drain within %ds: %s" % (DRAIN_S, self.timeline))
        self.assertEqual(self.writer_rc, 0, self.writer_log)
        self.assertEqual(self.targets_health, ["up", "up"])
        wm = self.writer_metrics
        names = ["shard%d" % i for i in range(N_SHARDS)]
        sent = _sum_by(wm, "prometheus_remote_storage_samples_total", "remote_name")
        dropped = _sum_by(wm, "prometheus_remote_storage_samples_dropped_total", "remote_name")
        for fam in ("prometheus_remote_storage_samples_failed_total",
                    "prometheus_remote_storage_samples_retried_total"):
            self.assertFalse({k: v for k, v in _sum_by(wm, fam, "remote_name").items() if v}, fam)
        got = [peers.ingested(s.metrics(), "remote_write") for s in self.shards]
        single = peers.ingested(self.single.metrics(), "remote_write")
        print("samples: shards %s (sent %s, relabel-dropped %s), single %d" % (
            [int(x) for x in got], [int(sent[n]) for n in names], [int(dropped.get(n, 0)) for n in names], single))
        self.assertTrue(all(g > 0 for g in got), got)
        self.assertEqual([sent[n] for n in names], got)
        self.assertEqual(sent["single"], single)
        self.assertEqual(sum(got), single)
        for n in names:
            self.assertEqual(sent[n] + dropped.get(n, 0), single, n)
        self.assertEqual(peers.ingested(self.nodrop.metrics(), "remote_write"), got[0])
        for s in self.shards + [self.single, self.nodrop]:
            m = s.metrics()
            self.assertEqual(sum(v for (n, labels), v in m.items()
                                 if n == "tsdb_samples_rejected_total"), 0, s.log_tail())
            self.assertEqual(metric(m, "tsdb_samples_duplicate_total"), 0)
        # Metadata is not relabelled: every shard gets all of it, also for the metric
        # families whose series live elsewhere.
        for fam in ("node_load1", "prometheus_http_requests_total"):
            for i, s in enumerate(self.shards):
                r = s.get("/api/v1/metadata?metric=" + fam)
                self.assertEqual(r.status, 200, r)
                self.assertIn(fam, r.json()["data"], "shard %d has no metadata for %s" % (i, fam))

    # ---------------------------------------------------------------- placement

    def test_2_series_partition(self):
        sets = [self.series(s) for s in self.shards]
        whole = self.series(self.single)
        print("series: shards %s, single %d" % ([len(x) for x in sets], len(whole)))
        self.assertGreater(len(whole), 300)
        for i, a in enumerate(sets):
            self.assertTrue(a, "shard %d holds no series" % i)
            self.assertFalse([k for k in a if "__tmp_shard" in dict(k)], "__tmp_shard stored")
            for j in range(i + 1, N_SHARDS):
                common = a & sets[j]
                self.assertFalse(common, "shards %d and %d share %s" % (i, j, sorted(common)[:3]))
        union = set().union(*sets)
        self.assertEqual(sorted(whole - union)[:5], [])
        self.assertEqual(sorted(union - whole)[:5], [])
        # hashmod over (__name__, instance, job): each such group is on one shard only.
        where = {}
        for i, a in enumerate(sets):
            for k in a:
                d = dict(k)
                where.setdefault((d["__name__"], d.get("instance"), d.get("job")), set()).add(i)
        self.assertFalse([g for g, s in where.items() if len(s) != 1])
        # ... and it is the shard hashmod names: the last 8 bytes of the MD5 of the source
        # label values joined by ";", big-endian, modulo the shard count.
        wrong = [(g, s) for g, s in where.items() if s != {shard_of(*g)}]
        self.assertFalse(wrong[:5], "%d groups not on the shard hashmod names" % len(wrong))
        self.assertEqual({d.get("job") for k in whole for d in [dict(k)]}, {"prometheus", "node"})
        # Without the labeldrop, the shard's series carry __tmp_shard.
        nodrop = self.series(self.nodrop)
        self.assertEqual(nodrop, {tuple(sorted(k + (("__tmp_shard", "0"),))) for k in sets[0]})

    # ---------------------------------------------------------------- reads

    def test_3_fanout_answers_like_single(self):
        done, nonempty, n_evals, identical, differ = 0, 0, 0, 0, []
        reads0 = self.read_counts()
        for q in QUERIES:
            for name, ev in self.evaluations():
                fan = self.query("fanout", q, **ev)
                one = self.query("single", q, **ev)
                own = self.query(self.single, q, **ev)
                n_evals += 1
                self.assertEqual(fan.get("status"), "success", (q, name, fan))
                self.assertFalse(fan.get("warnings"), (q, name, fan))
                res = fan["data"]["result"]
                if res and fan["data"]["resultType"] in ("vector", "matrix"):
                    nonempty += 1
                elif q in NONEMPTY:
                    differ.append((q, name, "empty answer through the fan-out reader"))
                for what, want in (("single reader", one), ("single tsdbd", own)):
                    d = promdiff.compare(want, fan, q)
                    if d:
                        differ.append((q, name, "vs %s: %s" % (what, d)))
                if promdiff.identical(one, fan):
                    identical += 1
            done += 1
        # After the stale markers: the series have ended, in all three.
        hi, st = self.window[1], self.stale_at
        for q, ev in (('up', {"t": st}), ('count by (job) ({__name__=~"node_.+"})', {"t": st}),
                      ('rate(node_cpu_seconds_total{mode="idle"}[10s])', {"t": st - 4}),
                      ('up', {"rng": (hi - 6, st + 4, 1)})):
            fan = self.query("fanout", q, **ev)
            for what, want in (("single reader", self.query("single", q, **ev)),
                               ("single tsdbd", self.query(self.single, q, **ev))):
                d = promdiff.compare(want, fan, q)
                if d:
                    differ.append((q, "stale %s" % ev, "vs %s: %s" % (what, d)))
            if q != 'up' or "t" in ev:
                continue
            self.assertEqual(len(_result(fan)), 2)
            for x in _result(fan):   # both series end after the window, before stale_at
                self.assertLess(float(x["values"][-1][0]), st, x)
                self.assertGreater(float(x["values"][-1][0]), hi - 1, x)
        self.assertEqual(_result(self.query("fanout", 'up', t=st)), [])
        reads = [b - a for a, b in zip(reads0, self.read_counts())]
        print("fan-out: %d queries x %d evaluations, %d non-empty, %d identical to the single "
              "reader's, shard remote reads %s" % (done, len(self.evaluations()), nonempty, identical, reads))
        for q, name, d in differ:
            print("DIFF  %s  %s\n      %s" % (name, q, d[:600]))
        self.assertFalse(differ, "%d evaluations differ" % len(differ))
        self.assertGreater(nonempty, n_evals * 3 // 4)
        self.assertTrue(all(r > 0 for r in reads), reads)

    def test_4_required_matchers(self):
        t = self.window[1] - 3
        before = self.read_counts()
        node = self.query("required", 'up{job="node"}', t)
        after_node = self.read_counts()
        want = self.query("fanout", 'up{job="node"}', t)
        self.assertIsNone(promdiff.compare(want, node, "up"))
        self.assertEqual(len(_result(node)), 1)
        self.assertTrue(all(b > a for a, b in zip(before, after_node)), (before, after_node))
        # Only an equality matcher counts: job=~"node" does not satisfy job="node".
        for q in ('up{job="prometheus"}', 'up', 'count({__name__=~".+"})', 'up{job=~"node"}',
                  'rate(prometheus_http_requests_total{job="prometheus"}[10s])'):
            c0 = self.read_counts()
            r = self.query("required", q, t)
            c1 = self.read_counts()
            self.assertEqual(_result(r), [], q)
            self.assertEqual(c0, c1, "%s: the shards were asked" % q)
            self.assertTrue(_result(self.query("fanout", q, t)), q)
        # A range query on both sides of the filter.
        lo, hi = self.window
        r = self.query("required", 'rate(node_cpu_seconds_total{job="node"}[10s])', rng=(lo + 11, hi - 3, 2))
        w = self.query("fanout", 'rate(node_cpu_seconds_total{job="node"}[10s])', rng=(lo + 11, hi - 3, 2))
        self.assertTrue(_result(r))
        self.assertIsNone(promdiff.compare(w, r, "rate"))

    def _proxy_matchers(self, proxy, n0):
        """[(type, name, value)] of every query in the ReadRequests proxy saw after n0."""
        import snappy
        out = []
        for path, _, body in proxy.requests[n0:]:
            if path.startswith("/api/v1/read") and body:
                rr = tsdbtest.pb.ReadRequest()
                rr.ParseFromString(snappy.uncompress(body))
                for q in rr.queries:
                    out.append(sorted((m.type, m.name, m.value) for m in q.matchers))
        return out

    def test_5_filter_external_labels(self):
        t = self.window[1] - 3
        region = (tsdbtest.EQ, "region", "eu")
        # Default (true): region="eu" is added to what tsdbd is asked; tsdbd has no such
        # label, so every answer is empty (no error, no warning).
        px = self.ext_proxy["extlabels"]
        n0 = len(px.requests)
        for q in ('up', 'count({__name__=~".+"})', 'rate(prometheus_http_requests_total[10s])'):
            r = self.query("extlabels", q, t)
            self.assertEqual(r.get("status"), "success", r)
            self.assertFalse(r.get("warnings"), r)
            self.assertEqual(_result(r), [], q)
        sent = self._proxy_matchers(px, n0)
        self.assertTrue(sent)
        self.assertTrue(all(region in m for m in sent), sent)
        # A selector with a matcher of its own for the label is sent as written.
        n0 = len(px.requests)
        r = self.query("extlabels", 'up{region=~".*"}', t)
        self.assertEqual(len(_result(r)), 2, r)
        self.assertEqual(self._proxy_matchers(px, n0), [[(tsdbtest.EQ, "__name__", "up"),
                                                         (tsdbtest.RE, "region", ".*")]])
        # filter_external_labels: false: asked as written, answered as the fan-out reader.
        px = self.ext_proxy["extlabels-nofilter"]
        n0 = len(px.requests)
        for q in ('up', 'count by (job) ({__name__=~".+"})', 'rate(prometheus_http_requests_total[10s])',
                  'histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[10s])))'):
            r = self.query("extlabels-nofilter", q, t)
            self.assertTrue(_result(r), q)
            self.assertIsNone(promdiff.compare(self.query("fanout", q, t), r, q), q)
            self.assertFalse([x for x in _result(r) if "region" in x["metric"]])
        sent = self._proxy_matchers(px, n0)
        self.assertTrue(sent)
        self.assertFalse([m for m in sent if any(x[1] == "region" for x in m)], sent)

    def test_6_moved_series(self):
        """A series written to shard 0, then (as after a change of the shard count) to
        shard 1, with the samples of a stretch on both: the fan-out reader answers one
        series with every sample once (Prometheus merges remote read answers series by
        series, deduplicating equal timestamps)."""
        lo, hi = self.window
        labels = {"__name__": "scaleout_moved_total", "job": "moved", "instance": "m:1"}
        pts = [(t * 1000, float(t - lo)) for t in range(lo, hi + 1)]
        cut_a, cut_b = len(pts) // 3, 2 * len(pts) // 3
        for srv, part in ((self.shards[0], pts[:cut_b]), (self.shards[1], pts[cut_a:])):
            r = srv.post("/api/v1/write", tsdbtest.write_request([(labels, part)]), peers.rw1_headers())
            self.assertEqual(r.status, 204, r)
        q = "scaleout_moved_total"
        r = self.query("fanout", q, rng=(lo, hi, 1))
        self.assertFalse(r.get("warnings"), r)
        res = _result(r)
        self.assertEqual(len(res), 1, res)
        self.assertEqual([(int(t), float(v)) for t, v in res[0]["values"]], [(t // 1000, v) for t, v in pts])
        r = self.query("fanout", "count_over_time(%s[1h])" % q, t=hi)
        self.assertEqual([x["value"][1] for x in _result(r)], [str(len(pts))])

    def test_9_shard_down(self):
        t = self.window[1] - 3
        q = 'count by (job) ({job=~"node|prometheus"})'   # the scraped series, on one shard each
        full = self.query("fanout", q, t)
        per_shard = []
        for s in self.shards:
            per_shard.append({x["metric"]["job"]: int(x["value"][1]) for x in _result(self.query(s, q, t))})
        down = self.shards[2]
        self.assertEqual(down.stop(), 0, down.log_tail())
        try:
            part = self.query("fanout", q, t)
            print("shard 2 down: HTTP %s, status %s, warnings %s, result %s" % (
                part["_http"], part.get("status"), part.get("warnings"),
                [(x["metric"], x["value"][1]) for x in part.get("data", {}).get("result", [])]))
            self.assertEqual(part.get("status"), "success", part)
            self.assertTrue(part.get("warnings"), part)
            want = {}
            for d in per_shard[:2]:
                for job, n in d.items():
                    want[job] = want.get(job, 0) + n
            self.assertEqual({x["metric"]["job"]: int(x["value"][1]) for x in _result(part)}, want)
        finally:
            down.start()
        again = self.query("fanout", q, t)
        self.assertIsNone(promdiff.compare(full, again, q))
        self.assertFalse(again.get("warnings"))


if __name__ == "__main__":
    peers.run_main()
