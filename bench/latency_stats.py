#!/usr/bin/env python3
"""Reclaim-latency statistics from a `reclaim run --json FILE` report.

Usage: bench/latency_stats.py REPORT.json [REPORT.json ...]

reclaim_latency_ms is "fault injected -> everything reclaimed"; for the
success path (fault "none") it is "rank exited -> everything reclaimed" and is
left out of the "all faults" row. Scenarios whose latency is null (or negative)
are skipped: count them against the number of scenarios. Prints count, median, p90, p99 and max,
overall and per fault, plus the run's wall time; percentiles are nearest-rank.
Standard library only.
"""
import json
import math
import sys
from collections import defaultdict


def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def row(name, values):
    if not values:
        return f"| {name} | 0 | | | | |"
    return (f"| {name} | {len(values)} | {percentile(values, 50):.2f} | {percentile(values, 90):.2f} "
            f"| {percentile(values, 99):.2f} | {max(values):.2f} |")


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    overall, by_fault = [], defaultdict(list)
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        summary = report.get("summary", {})
        print(f"{path}: {summary.get('total')} scenarios, {summary.get('passed')} passed, "
              f"wall {summary.get('wall_ms', 0):.0f} ms, jobs {report.get('jobs')}")
        for sc in report["scenarios"]:
            latency = sc.get("reclaim_latency_ms")
            if latency is None or latency < 0:
                continue
            fault = sc.get("fault", "?")
            # The success path has no fault: its value is rank exit -> reclaimed.
            if fault != "none":
                overall.append(latency)
            by_fault[fault].append(latency)
    print()
    print("| faults | n | median ms | p90 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    print(row("all faults", overall))
    for fault in sorted(by_fault):
        print(row(fault, by_fault[fault]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
