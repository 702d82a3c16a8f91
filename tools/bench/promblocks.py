#!/usr/bin/python3
"""Prometheus blocks in and out: tsdbctl beside promtool and vmctl on the same blocks.

  1. OpenMetrics text of S series x P points at 15 s (counters and random-walk gauges,
     deterministic) is turned into blocks by `promtool tsdb create-blocks-from
     openmetrics` (Prometheus' own block writer; timed).
  2. Those blocks are imported by `tsdbctl import --format prometheus` into an empty
     data directory, and by `vmctl prometheus --prom-snapshot` into a fresh
     VictoriaMetrics (its importer of Prometheus data; timed until it exits, then VM's
     flush is forced). Both are timed; sample counts are checked.
  3. tsdbctl exports the imported store back as blocks (`export --format prometheus`,
     timed), beside promtool's writing of the same samples in step 1; the two block sets
     are compared in bytes per sample and `promtool tsdb list` sample counts.

Prints a Markdown table with samples/s and ratios. Absolute times on a shared machine are
noise; the ratios in the same run are the figure.

Usage: promblocks.py [--series 1000] [--points 2880] [--keep]
"""
import argparse
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("TS_BUILD") or os.path.join(SRC, "build", "release")
TSDBCTL = os.path.join(BUILD, "tsdbctl")
STEP_S = 15


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def timed(argv, **kw):
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=3600, **kw)
    dt = time.monotonic() - t
    if p.returncode != 0:
        sys.exit("%s failed (%d): %s" % (argv[0], p.returncode, p.stderr.decode()[-2000:]))
    return dt, p.stdout.decode(), p.stderr.decode()


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.stat(os.path.join(root, f)).st_blocks * 512
    return total


def list_samples(path):
    out = subprocess.run(["promtool", "tsdb", "list", path], capture_output=True,
                         check=True).stdout.decode().splitlines()[1:]
    return sum(int(l.split()[4]) for l in out if l.strip())


def write_openmetrics(path, n_series, n_points, end_s):
    rng = random.Random(42)
    start = end_s - (n_points - 1) * STEP_S
    with open(path, "w") as f:
        per_metric = 20
        for m in range((n_series + per_metric - 1) // per_metric):
            counter = m % 2 == 0
            name = "bench_%s_%d" % ("requests_total" if counter else "load", m)
            f.write("# TYPE %s %s\n" % (name.replace("_total", "") if counter else name,
                                        "counter" if counter else "gauge"))
            for i in range(min(per_metric, n_series - m * per_metric)):
                lab = '{instance="host-%04d:9100",job="node"}' % i
                v = 0.0 if counter else rng.uniform(0, 4)
                lines = []
                for k in range(n_points):
                    if counter:
                        v += rng.choice((0, 1, 1, 2, 5))
                    else:
                        v = round(min(8.0, max(0.0, v + rng.uniform(-0.1, 0.1))), 2)
                    lines.append("%s%s %r %d\n" % (name, lab, v, start + k * STEP_S))
                f.writelines(lines)
        f.write("# EOF\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--points", type=int, default=2880)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-promblocks-")
    vm = None
    try:
        # Whole days back, so the data sits in closed partitions and 2h blocks align.
        end_s = (int(time.time()) // 86400 - 1) * 86400 - STEP_S
        om = os.path.join(tmp, "data.om")
        write_openmetrics(om, a.series, a.points, end_s)
        n = a.series * a.points
        blocks = os.path.join(tmp, "promtool-blocks")
        t_promtool, _, _ = timed(["promtool", "tsdb", "create-blocks-from", "openmetrics", om,
                                  blocks])
        assert list_samples(blocks) == n
        # tsdbctl import
        store = os.path.join(tmp, "tsdbd")
        t_import, _, err = timed([TSDBCTL, "import", "--format", "prometheus", "--from", blocks,
                                  "--data-dir", store])
        assert " %d stored" % n in err, err
        # vmctl into VictoriaMetrics
        port = free_port()
        vm = subprocess.Popen(["/usr/bin/victoria-metrics", "-storageDataPath=" + os.path.join(tmp, "vm"),
                               "-httpListenAddr=127.0.0.1:%d" % port, "-loggerLevel=WARN",
                               "-retentionPeriod=100y"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        t0 = time.monotonic()
        # vmctl insists on a terminal (it fails with "inappropriate ioctl" without one):
        # script(1) gives it a pseudo-terminal.
        timed(["script", "-qec", " ".join(shlex.quote(x) for x in [
            "/usr/bin/vmctl", "prometheus", "--prom-snapshot", blocks, "--vm-addr",
            "http://127.0.0.1:%d" % port, "-s", "--vm-disable-progress-bar"]), "/dev/null"])
        urllib.request.urlopen("http://127.0.0.1:%d/internal/force_flush" % port, timeout=60)
        t_vmctl = time.monotonic() - t0
        q = "http://127.0.0.1:%d/api/v1/query?query=sum(count_over_time({job=%%22node%%22}[%dd]))&time=%d" % (
            port, a.points * STEP_S // 86400 + 2, end_s + 1)
        vm_count = int(float(__import__("json").load(urllib.request.urlopen(q, timeout=60))
                             ["data"]["result"][0]["value"][1]))
        # tsdbctl export back into blocks
        out = os.path.join(tmp, "tsdbctl-blocks")
        t_export, _, _ = timed([TSDBCTL, "export", "--data-dir", store, "--format", "prometheus",
                                "--out", out, "--max-block-duration", "2h"])
        assert list_samples(out) == n
        print("%d series x %d points = %d samples (VictoriaMetrics counted %d)\n" % (
            a.series, a.points, n, vm_count))
        print("| step | tsdbctl | peer | samples/s tsdbctl | samples/s peer | tsdbctl vs peer |")
        print("|---|---|---|---|---|---|")
        print("| import Prometheus blocks | %.2f s | vmctl: %.2f s | %.0f | %.0f | %.2fx faster |" % (
            t_import, t_vmctl, n / t_import, n / t_vmctl, t_vmctl / t_import))
        # promtool also parses the text: a reference, not like for like.
        print("| write 2h blocks | export: %.2f s | promtool create-blocks (from text): %.2f s | %.0f | %.0f | %.2fx |" % (
            t_export, t_promtool, n / t_export, n / t_promtool, t_promtool / t_export))
        print("\nblock bytes/sample: tsdbctl %.3f, promtool %.3f" % (du(out) / n, du(blocks) / n))
    finally:
        if vm:
            vm.terminate()
            vm.wait(timeout=30)
        if a.keep:
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
