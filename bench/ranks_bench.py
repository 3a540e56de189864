#!/usr/bin/env python3
"""Multi-rank costs of reclaim, measured on real processes.

Usage: bench/ranks_bench.py BUILD_DIR [--repeat N]

1. Verdict delay: a 4-rank `crash` scenario with the torchrun policy on the
   well-behaved fixture (fit/train_batch#1/crash/ws4/r3), run N times; for
   each run, verdict reached (timeline `finished`) minus the moment the last
   process of the scenario was gone (`last_process_gone`, which is after the
   last rank's exit). Prints median, p90, max.
2. Scale: one scenario per world size 2, 4, ..., 64, every rank with 2 loader
   workers (so 64 ranks are 64 ranks + 128 workers + 64 janitors), the success
   path and a crash of the last rank at the first training batch. Prints the
   wall time of each scenario run alone (`reclaim run` of that one scenario,
   from process start to exit, so the shepherd, the audits and the clean-up
   are included) and the scenario's own span (first rank started -> verdict).

Standard library only. Writes its suites and reports into a temporary
directory and removes it.
"""
import json
import math
import os
import subprocess
import sys
import tempfile
import time


def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def run(build, suite, report, extra=()):
    cmd = [os.path.join(build, "reclaim"), "run", suite, "-j", "1", "--json", report, *extra]
    start = time.monotonic()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = (time.monotonic() - start) * 1000
    if done.returncode != 0:
        sys.exit(f"reclaim exited {done.returncode}: {done.stderr}")
    with open(report) as f:
        return json.load(f), wall


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 30
    pool = os.path.join(build, "fixtures", "worker_pool")
    with tempfile.TemporaryDirectory() as tmp:
        suite = os.path.join(tmp, "s.toml")

        with open(suite, "w") as f:
            f.write(f'[target]\ncommand = ["{pool}"]\n[expect]\nlauncher = "torchrun"\n'
                    '[[matrix]]\nentries = ["fit"]\npoints = ["train_batch#1"]\nfaults = ["crash"]\n'
                    'world_sizes = [4]\nranks = [-1]\nnormal = false\n')
        report, _ = run(build, suite, os.path.join(tmp, "r.json"), ["--repeat", str(repeat)])
        delays = []
        for sc in report["scenarios"]:
            t = sc["timeline_ns"]
            delays.append((t["finished"] - t["last_process_gone"]) / 1e6)
        print(f"== verdict delay after the last process is gone, {sc['id']}, {len(delays)} runs (ms)")
        print(f"median {percentile(delays, 50):.2f}  p90 {percentile(delays, 90):.2f}  max {max(delays):.2f}")

        print("\n== scale: one scenario alone, ranks x 2 workers (ms)")
        print("| ranks | processes | normal: wall | normal: span | crash: wall | crash: span |")
        print("|---|---|---|---|---|---|")
        for ws in (2, 4, 8, 16, 32, 64):
            cells = []
            for fault in ("none", "crash"):
                with open(suite, "w") as f:
                    f.write(f'[target]\ncommand = ["{pool}", "--workers", "2"]\n'
                            '[expect]\ntimeout = "60s"\ncollective_timeout = "10s"\n'
                            '[[matrix]]\nentries = ["fit"]\npoints = ["train_batch#1"]\n'
                            f'faults = [{"" if fault == "none" else chr(34) + fault + chr(34)}]\n'
                            f'world_sizes = [{ws}]\nranks = [-1]\nnormal = {"true" if fault == "none" else "false"}\n')
                walls, spans = [], []
                for _ in range(3):
                    report, wall = run(build, suite, os.path.join(tmp, "r.json"))
                    sc = report["scenarios"][0]
                    if sc["verdict"] != "pass":
                        sys.exit(f"{sc['id']}: {sc['verdict']}")
                    walls.append(wall)
                    spans.append(sc["timeline_ns"]["finished"] / 1e6)
                cells += [f"{percentile(walls, 50):.0f}", f"{percentile(spans, 50):.0f}"]
            print(f"| {ws} | {ws * 4} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
