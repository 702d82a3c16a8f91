#!/usr/bin/python3
"""Does a slow selector hold up writes? One tsdbd (the given build) with 200 series whose
label values are 300+ bytes (so the postings keep only a prefix and every candidate is
re-checked on its real labels) and a regex that backtracks exponentially on them,
x*(a|ab|b)*c. Two clients run the query in a loop while a third sends 20 small writes;
it prints the query time alone, the writes' latency meanwhile, and what timeout=1ms
answers.

Usage: regex_stall.py [BUILD_DIR]   (default build/release). Only 127.0.0.1; the server
is stopped by its PID. Not a test: a figure to compare builds with.
"""
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import tsdbtest  # noqa: E402


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "release")
    srv = tsdbtest.Server(binary=os.path.join(build, "tsdbd")).start()
    try:
        t0 = tsdbtest.now_ms() - 600000
        srv.import_jsonl([tsdbtest.jsonl_line(
            {"__name__": "lv", "v": "x" * 250 + "ab" * 25 + "cd" + str(i)}, [(t0, 1.0)])
            for i in range(200)])
        srv.stop()
        srv.start()  # every series in the postings
        q = {"query": 'count(lv{v=~"x*(a|ab|b)*c"})', "time": str(t0 / 1000 + 1)}
        t = time.monotonic()
        r = srv.get("/api/v1/query", q, timeout=600)
        print("query alone: %.3f s (status %d)" % (time.monotonic() - t, r.status))
        stop = [False]
        qtimes = []

        def loop():
            while not stop[0]:
                t = time.monotonic()
                srv.get("/api/v1/query", q, timeout=600)
                qtimes.append(time.monotonic() - t)

        threads = [threading.Thread(target=loop) for _ in range(2)]
        for th in threads:
            th.start()
        time.sleep(0.2)
        lat = []
        for k in range(20):
            body = tsdbtest.jsonl_line({"__name__": "w"}, [(t0 + k * 1000, 1.0)]) + "\n"
            t = time.monotonic()
            srv.post("/api/v1/import", body.encode(), timeout=600)
            lat.append(time.monotonic() - t)
        stop[0] = True
        for th in threads:
            th.join(600)
        lat.sort()
        print("20 writes during the queries: p50 %.1f ms, max %.1f ms" %
              (lat[10] * 1e3, lat[-1] * 1e3))
        q["timeout"] = "1ms"
        r = srv.get("/api/v1/query", q, timeout=600)
        print("timeout=1ms: %d %s" % (r.status, r.text[:100]))
    finally:
        srv.stop()
        srv.cleanup()


if __name__ == "__main__":
    main()
