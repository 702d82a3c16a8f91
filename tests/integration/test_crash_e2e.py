#!/usr/bin/python3
"""kill -9 of a real tsdbd (--sync=always) under remote-write load.

Two sender threads write deterministic remote-write 1.0 batches (each batch: a few
series of the thread's own series set, several samples each, timestamps increasing
per series) and record every batch answered 2xx. The main thread kills tsdbd with
SIGKILL at seeded random moments (at least 10 times under load, plus some kills while
it is still recovering), restarting it on the same data directory each time. At the
end, after one more restart: every acknowledged sample is there bit-exact, and every
batch whose answer never came (it was in flight at a kill) is either entirely there or
entirely absent, never half.

Read-back: GET /api/v1/export when the server has it; otherwise the resend oracle
(acknowledged batches resent at once must be counted entirely as duplicates; each
unacknowledged batch resent alone must be counted either entirely as duplicates or
entirely as new).

The seed is printed; TS_CRASH_SEED=<n> replays a run's schedule (thread timing varies).
"""
import os
import random
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from peers import encode_rw1, metric, rw1_headers, sz  # noqa: E402

KILLS_UNDER_LOAD = 12
KILLS_IN_RECOVERY = 3
SERIES_PER_THREAD = 20
SERIES_PER_BATCH = 4
SAMPLES_PER_SERIES = 5
TIME_BUDGET_S = 60


def value_for(seed, thread, batch, sid, j):
    """Deterministic values, some of them special (exact bits matter)."""
    h = (seed * 1000003 + thread * 7919 + batch * 104729 + sid * 131 + j) & 0xFFFFFFFF
    k = h % 11
    if k == 0:
        return float("inf")
    if k == 1:
        return -0.0
    if k == 2:
        return struct.unpack("<d", struct.pack("<Q", (h * 0x9E3779B97F4A7C15) & 0x7FEFFFFFFFFFFFFF))[0]
    return (h % 100000) / 7.0 - 5000.0


class Sender(threading.Thread):
    def __init__(self, idx, seed, t0, up, stop):
        super().__init__(daemon=True)
        self.idx, self.seed, self.t0 = idx, seed, t0
        self.up, self.stop = up, stop
        self.port = None
        self.acked, self.unacked, self.refused = [], [], []
        self.rng = random.Random(seed * 31 + idx)
        self.errors = []

    def batch(self, n):
        sids = sorted(self.rng.sample(range(SERIES_PER_THREAD), SERIES_PER_BATCH))
        series = []
        for sid in sids:
            lab = [("__name__", "crash_e2e"), ("batch", str(n)), ("sender", str(self.idx)),
                   ("series", str(sid))]
            lab.sort()
            # unique (series, t) per batch: batch n owns timestamps t0 + n*10 + j
            smp = [(self.t0 + n * 10 + j, value_for(self.seed, self.idx, n, sid, j))
                   for j in range(SAMPLES_PER_SERIES)]
            series.append((lab, smp))
        return series

    def run(self):
        n = 0
        while not self.stop.is_set():
            if not self.up.wait(0.2):
                continue
            port = self.port
            b = self.batch(n)
            n += 1
            body = sz(encode_rw1(b))
            try:
                r = peers.http_request("127.0.0.1", port, "POST", "/api/v1/write", body, rw1_headers(), timeout=10)
            except OSError:
                self.unacked.append(b)   # no answer: in flight at a kill (or refused)
                continue
            if 200 <= r.status < 300:
                self.acked.append(b)
            elif r.status == 503:
                self.refused.append(b)
            else:
                self.errors.append((r.status, r.body[:200]))


class CrashTest(unittest.TestCase):
    def test_kill9_under_load(self):
        seed = int(os.environ.get("TS_CRASH_SEED") or random.SystemRandom().randrange(1, 1 << 30))
        print("crash test seed %d (TS_CRASH_SEED=%d to replay)" % (seed, seed))
        rng = random.Random(seed)
        t_begin = time.monotonic()
        srv = peers.Tsdbd(["--sync", "always", "--workers", "4"], name="crash")
        self.addCleanup(srv.cleanup)
        srv.start()
        t0 = (peers.now_ms() // 1000) * 1000 - 20 * 60000
        up, stop = threading.Event(), threading.Event()
        senders = [Sender(i, seed, t0, up, stop) for i in range(2)]
        for s in senders:
            s.port = srv.port
            s.start()
        up.set()
        kills = recovery_kills = 0
        try:
            while kills < KILLS_UNDER_LOAD and time.monotonic() - t_begin < TIME_BUDGET_S - 15:
                time.sleep(rng.uniform(0.05, 0.8))
                up.clear()      # requests already on their way stay in flight
                srv.kill9()
                kills += 1
                if recovery_kills < KILLS_IN_RECOVERY and rng.random() < 0.35:
                    # kill again while it replays the WAL (or before it even listens)
                    srv.spawn()
                    time.sleep(rng.uniform(0.0, 0.15))
                    srv.kill9()
                    recovery_kills += 1
                srv.start(same_port=False)
                for s in senders:
                    s.port = srv.port
                up.set()
            time.sleep(0.3)
        finally:
            stop.set()
            up.set()
            for s in senders:
                s.join(timeout=15)
        self.assertGreaterEqual(kills, 10, "time budget too small for 10 kills")
        for s in senders:
            self.assertFalse(s.errors, s.errors[:3])
        # one more crash-free restart, then read back
        srv.kill9()
        srv.start(same_port=False)
        acked = [b for s in senders for b in s.acked]
        unacked = [b for s in senders for b in s.unacked + s.refused]
        n_acked = sum(len(smp) for b in acked for _, smp in b)
        self.assertGreater(len(acked), 50)
        present = absent = 0
        if peers.export_available(srv):
            how = "export"
            got = peers.export(srv, '{__name__="crash_e2e"}')
            for b in acked:
                for lab, smp in b:
                    g = got.get(tuple(lab))
                    self.assertIsNotNone(g, ("acknowledged series missing", lab))
                    self.assertEqual(len(g), len(smp), lab)
                    for (t, v), (gt, gv) in zip(smp, g):
                        self.assertEqual(t, gt)
                        self.assertEqual(peers.bits(v), peers.bits(gv), (lab, t, v, gv))
            for b in unacked:
                there = [tuple(lab) in got for lab, _ in b]
                self.assertTrue(all(there) or not any(there), ("half-visible batch", b[0][0]))
                if all(there):
                    present += 1
                    for lab, smp in b:
                        self.assertEqual([(t, peers.bits(v)) for t, v in smp],
                                         [(t, peers.bits(v)) for t, v in got[tuple(lab)]])
                else:
                    absent += 1
            known = {tuple(lab) for b in acked + unacked for lab, _ in b}
            self.assertFalse(set(got) - known, "series from batches never sent")
        else:
            how = "resend oracle (no export yet)"
            dup, new, other, st = peers.resend_check(srv, [x for b in acked for x in b])
            self.assertEqual((dup, new, other), (n_acked, 0, 0), "acknowledged samples lost or changed; %s" % st)
            for b in unacked:
                n = sum(len(smp) for _, smp in b)
                dup, new, other, st = peers.resend_check(srv, b)
                self.assertEqual(other, 0, st)
                self.assertIn((dup, new), ((n, 0), (0, n)), ("half-visible batch", b[0][0]))
                if dup:
                    present += 1
                else:
                    absent += 1
        m = srv.metrics()
        self.assertEqual(metric(m, "tsdb_http_requests_total", handler="remote_write", code="400"), 0)
        print("crash test: seed %d, %d kills under load + %d during recovery, %d batches acknowledged "
              "(%d samples) all present bit-exact; %d unacknowledged batches: %d wholly present, %d wholly "
              "absent (via %s); %.1fs" % (seed, kills, recovery_kills, len(acked), n_acked, len(unacked),
                                         present, absent, how, time.monotonic() - t_begin))


if __name__ == "__main__":
    peers.run_main()
