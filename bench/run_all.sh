#!/bin/sh
# Produces every number in BENCHMARKS.md, with the machine it ran on.
#
# Usage (from anywhere): bench/run_all.sh BUILD_DIR [OUT_DIR]
#   BUILD_DIR  a configured and built tree (reclaim, reclaim-shepherd,
#              fixtures/worker_pool, bench/overhead_bench)
#   OUT_DIR    where the raw outputs go (default: a fresh mktemp -d)
# Needs hyperfine (apt-get install hyperfine) for the suite wall time; without
# it the suite is timed once per run by the JSON report's wall_ms.
set -eu

build=$(cd "${1:?usage: bench/run_all.sh BUILD_DIR [OUT_DIR]}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$(mktemp -d)}
mkdir -p "$out"
cd "$src"

echo "== machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc:   $(nproc)"
echo "kernel:  $(uname -r)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "euid:    $(id -u)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit:  $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?')"

echo
echo "== 1. harness overhead vs floor, and 4. scan cost"
"$build/bench/overhead_bench" --benchmark_enable_random_interleaving=true \
  --benchmark_out="$out/overhead.json" --benchmark_out_format=json | tee "$out/overhead.txt"

echo
echo "== 2. standard.toml, -j 2, wall time"
if command -v hyperfine >/dev/null 2>&1; then
  hyperfine -N -w 1 -r 10 --export-json "$out/hyperfine.json" \
    "$build/reclaim run scenarios/standard.toml -j 2"
else
  echo "hyperfine not installed: see the wall_ms lines below"
fi

echo
echo "== 3. reclaim latency per scenario (3 runs of standard.toml, -j 2)"
for i in 1 2 3; do
  "$build/reclaim" run scenarios/standard.toml -j 2 --json "$out/standard$i.json" >/dev/null
done
python3 "$src/bench/latency_stats.py" "$out"/standard1.json "$out"/standard2.json "$out"/standard3.json
echo
echo "scenarios that ran >= 500 ms (the grace period is 1 s):"
python3 - "$out"/standard1.json "$out"/standard2.json "$out"/standard3.json <<'EOF'
import json, sys
n = 0
for path in sys.argv[1:]:
    for sc in json.load(open(path))["scenarios"]:
        finished = sc["timeline_ns"].get("finished") or 0
        if finished >= 500e6:
            n += 1
            print(f"  {path}: {sc['id']} {sc['verdict']} finished at {finished / 1e6:.0f} ms, "
                  f"all_reclaimed={sc['timeline_ns'].get('all_reclaimed')}")
print(f"  {n} in total")
EOF
echo
echo "== 5.-8. timing resolution, control channel, audit cost with live processes, memory"
"$build/bench/harness_cost_bench" --benchmark_out="$out/harness_cost.json" --benchmark_out_format=json \
  | tee "$out/harness_cost.txt"

echo
echo "== 9. reclaim bench accuracy: worker_pool --bug slow-cleanup=MS"
for ms in 0 5 20 80; do
  echo "-- slow-cleanup=$ms"
  "$build/reclaim" bench scenarios/smoke.toml --filter 'fit/train_batch#1/sigterm:fit/setup/exception' \
    --iterations 10 --repetitions 3 --benchmark_out="$out/accuracy$ms.json" --plot "$out/accuracy$ms.svg" \
    -- "$build/fixtures/worker_pool" --bug "slow-cleanup=$ms" | sed -n '/^Reclaim latency/,$p'
done

echo
echo "== 10. multi-rank: verdict delay and scale"
python3 "$src/bench/ranks_bench.py" "$build" --repeat 30 | tee "$out/ranks.txt"

echo
echo "raw outputs: $out"
