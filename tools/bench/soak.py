#!/usr/bin/python3
"""Soak run: one tsdbd under mixed ingest, queries and restarts for a long time (30 min by
default), watching that it stays healthy. Not a CI test: run it by hand after changes to
the write path, the writer thread, partitions or the HTTP server.

What it does, in a loop bounded by --minutes:
  ingest   every iteration writes one "scrape" of --hosts x --metrics series, alternating
           InfluxDB line protocol, JSON lines and the Prometheus text format. Timestamps
           start --history-hours in the past and advance 10 s per iteration until they
           catch up with the clock, so day partitions are crossed, closed, compacted and
           reopened; then they follow the clock.
  queries  each iteration also runs some of: an instant rate() over all series, a range
           query over the last hour, a regex series look-up, label values.
  bad      every 50th iteration sends malformed bodies, which must get a 4xx and change
           nothing.
  restarts every --restart-every seconds the server is stopped, alternately with SIGTERM
           and SIGKILL, and started again on the same data; after each start the count of
           one host's samples must equal what was acknowledged.

Every minute it samples the server's heap (RssAnon; LMDB's mapped pages are RssFile and
are printed beside it), open file descriptors and WAL size, and at the end it checks:
zero non-2xx answers to valid requests; every acknowledged sample present; heap,
descriptors and WAL size flat once timestamps follow the clock (the last third's maximum
within a tolerance of the first third's). Prints a table and exits 1 if a check failed.

Usage: soak.py [--minutes 30] [--build build/release] [--hosts 50] [--metrics 20]
               [--restart-every 300] [--history-hours 72] [--keep]
Only 127.0.0.1; the server is stopped by its own PID.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
STEP_MS = 10000


class Server:
    def __init__(self, binary, data_dir, log_path):
        self.binary, self.data_dir, self.log_path = binary, data_dir, log_path
        self.proc, self.port = None, None

    def start(self, timeout=60.0):
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            self.proc = subprocess.Popen(
                [self.binary, "--data-dir", self.data_dir, "--listen", "127.0.0.1:0"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        self.port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("tsdbd exited with %s" % self.proc.returncode)
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                m = re.search(rb"listening on \S+ \(port (\d+)\)", f.read())
            if m:
                self.port = int(m.group(1))
                try:
                    if self.request("GET", "/-/ready", timeout=2)[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("tsdbd not ready within %.0f s" % timeout)

    def stop(self, sig):
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(sig)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)

    def request(self, method, path, body=None, headers=None, timeout=60.0):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=body,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.read()

    def rss_kb(self, key="VmRSS:"):
        """Resident kB; key "RssAnon:" counts the heap alone (LMDB's mapped file pages,
        which the kernel may drop at will, are RssFile)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


class Soak:
    def __init__(self, args, srv):
        self.a, self.srv = args, srv
        self.acked = {}  # host -> samples acknowledged for metric m0 of that host
        self.bad_status = []  # (what, status, body) of valid requests not answered 2xx
        self.n_requests = 0
        self.rng = random.Random(1)

    def check(self, what, status, body):
        self.n_requests += 1
        if status // 100 != 2:
            self.bad_status.append((what, status, body[:200]))

    def ingest(self, it, t_ms):
        a = self.a
        fmt = it % 3
        if fmt == 0:  # line protocol, ns precision
            lines = ["soak,host=h%03d %s %d" % (h, ",".join(
                "m%d=%s" % (m, self.value(h, m, it)) for m in range(a.metrics)), t_ms * 1000000)
                for h in range(a.hosts)]
            st, body = self.srv.request("POST", "/write", "\n".join(lines).encode())
        elif fmt == 1:  # JSON lines
            lines = [json.dumps({"metric": {"__name__": "soak_m%d" % m, "host": "h%03d" % h},
                                 "values": [float(self.value(h, m, it))], "timestamps": [t_ms]})
                     for h in range(a.hosts) for m in range(a.metrics)]
            st, body = self.srv.request("POST", "/api/v1/import", "\n".join(lines).encode())
        else:  # Prometheus text
            lines = ['soak_m%d{host="h%03d"} %s %d' % (m, h, self.value(h, m, it), t_ms)
                     for h in range(a.hosts) for m in range(a.metrics)]
            st, body = self.srv.request("POST", "/api/v1/import/prometheus",
                                        ("\n".join(lines) + "\n").encode())
        self.check("ingest", st, body)
        if st // 100 == 2:
            for h in range(a.hosts):
                self.acked[h] = self.acked.get(h, 0) + 1

    @staticmethod
    def value(h, m, it):
        return it * (m + 1) + h  # counters: one value per (host, metric, iteration)

    def queries(self, t_ms):
        t = t_ms / 1000.0
        r = self.rng.random()
        if r < 0.3:
            q = {"query": "sum by (host) (rate(soak_m0[5m]))", "time": "%.3f" % t}
            st, body = self.srv.request("GET", "/api/v1/query?" + urllib.parse.urlencode(q))
            self.check("query", st, body)
        elif r < 0.5:
            q = {"query": "max(soak_m1)", "start": "%.3f" % (t - 3600), "end": "%.3f" % t,
                 "step": "60"}
            st, body = self.srv.request("GET", "/api/v1/query_range?" + urllib.parse.urlencode(q))
            self.check("query_range", st, body)
        elif r < 0.6:
            q = [("match[]", 'soak_m2{host=~"h0[0-4].*"}'), ("start", "%.3f" % (t - 600))]
            st, body = self.srv.request("GET", "/api/v1/series?" + urllib.parse.urlencode(q))
            self.check("series", st, body)
        elif r < 0.65:
            st, body = self.srv.request("GET", "/api/v1/label/host/values")
            self.check("label values", st, body)

    def bad_inputs(self):
        for path, body in (("/write", b"soak,host=x m0=\n"),
                           ("/api/v1/import", b"{not json\n"),
                           ("/api/v1/import/prometheus", b"soak_m0{host=\"x\" 1\n")):
            st, _ = self.srv.request("POST", path, body)
            self.n_requests += 1
            if st // 100 != 4:
                self.bad_status.append(("bad input %s" % path, st, b"expected 4xx"))

    def count_host(self, h, t_ms):
        """Samples of soak_m0{host=h} the server holds up to t_ms."""
        q = {"match[]": 'soak_m0{host="h%03d"}' % h, "end": "%.3f" % (t_ms / 1000.0 + 1)}
        st, body = self.srv.request("GET", "/api/v1/export?" + urllib.parse.urlencode(q))
        if st != 200:
            return -1
        return sum(len(json.loads(l)["timestamps"]) for l in body.decode().splitlines() if l)


def flat(samples, tolerance, slack):
    """Whether the last third's maximum stays within the first third's maximum times
    (1 + tolerance) plus slack."""
    if len(samples) < 3:
        return True
    k = len(samples) // 3
    return max(samples[-k:]) <= max(samples[:k]) * (1 + tolerance) + slack


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "release"))
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--restart-every", type=float, default=300)
    ap.add_argument("--history-hours", type=float, default=72)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="tsdb-soak-")
    srv = Server(os.path.join(a.build, "tsdbd"), os.path.join(tmp, "data"),
                 os.path.join(tmp, "tsdbd.log"))
    soak = Soak(a, srv)
    samples = []  # (minute, anon_kb, fds, wal_bytes, rss_kb), once caught up with the clock
    failures = []
    t_ms = int(time.time() * 1000 - a.history_hours * 3600 * 1000)
    t_ms -= t_ms % STEP_MS
    start = time.monotonic()
    end = start + a.minutes * 60
    next_sample = start
    next_restart = start + a.restart_every
    kill = False
    it = 0
    try:
        srv.start()
        while time.monotonic() < end:
            now_ms = int(time.time() * 1000)
            t_ms = min(t_ms + STEP_MS, now_ms)
            soak.ingest(it, t_ms)
            soak.queries(t_ms)
            if it % 50 == 49:
                soak.bad_inputs()
            if t_ms >= now_ms - STEP_MS:
                time.sleep(0.2)  # caught up with the clock: scrape-like pace
            if time.monotonic() >= next_sample:
                sample = (round((time.monotonic() - start) / 60, 1), srv.rss_kb("RssAnon:"),
                          srv.fds(), dir_bytes(os.path.join(srv.data_dir, "wal")),
                          srv.rss_kb())
                # Catching up with the clock ingests as fast as it can: the steady state
                # starts when timestamps follow the clock.
                if t_ms >= now_ms - STEP_MS:
                    samples.append(sample)
                m, anon, nfd, wal, rss = sample
                print("%6.1f min  it %6d  heap %7d kB  rss %7d kB  fds %4d  wal %9d B  "
                      "requests %d  non-2xx %d%s" % (
                          m, it, anon, rss, nfd, wal, soak.n_requests, len(soak.bad_status),
                          "" if t_ms >= now_ms - STEP_MS else "  (catching up)"), flush=True)
                next_sample += 60
            if time.monotonic() >= next_restart:
                srv.stop(signal.SIGKILL if kill else signal.SIGTERM)
                srv.start()
                got = soak.count_host(0, t_ms)
                if got != soak.acked.get(0, 0):
                    failures.append("after %s restart: host h000 has %d samples, %d acknowledged"
                                    % ("kill -9" if kill else "SIGTERM", got, soak.acked.get(0, 0)))
                kill = not kill
                next_restart += a.restart_every
            it += 1
        for h in range(a.hosts):
            got = soak.count_host(h, t_ms)
            if got != soak.acked.get(h, 0):
                failures.append("host h%03d: %d samples stored, %d acknowledged"
                                % (h, got, soak.acked.get(h, 0)))
        srv.stop(signal.SIGTERM)
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait(timeout=10)
    if soak.bad_status:
        failures.append("%d valid requests not answered 2xx, first: %r"
                        % (len(soak.bad_status), soak.bad_status[0]))
    rss = [s[1] for s in samples]
    fds = [s[2] for s in samples]
    wal = [s[3] for s in samples]
    if len(samples) < 6:
        failures.append("too short a steady state to judge (%d samples)" % len(samples))
    elif not flat(rss, 0.25, 16 * 1024):
        failures.append("heap grew: first third max %d kB, last third max %d kB"
                        % (max(rss[:len(rss) // 3]), max(rss[-(len(rss) // 3):])))
    if not flat(fds, 0, 16):
        failures.append("file descriptors grew: %r" % fds)
    if not flat(wal, 0.5, 8 << 20):
        failures.append("WAL grew: %r" % wal)
    print("\n%d iterations, %d requests, %d restarts; %s" % (
        it, soak.n_requests, int(a.minutes * 60 // a.restart_every),
        "all checks passed" if not failures else "FAILED:"))
    for f in failures:
        print("  - " + f)
    if a.keep:
        print("data and log kept in " + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
