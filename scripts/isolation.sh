#!/usr/bin/env bash
# Isolation measurement: does control-plane load move the hot thread's latency? Builds `hft`
# and the `api_load` harness in release, prints the host report for the engine core, then runs
# the harness: paper mode, hot thread busy-spinning on core 1, control plane and load generator
# on core 0 (the layout scripts/hft.service sets up), tick-to-order and stage percentiles with
# the API idle vs under load (300 GET /stats per second + 8 /ws subscribers), K rounds in ABBA
# order, medians, and the loaded/idle p99 ratio against the 1.25x target.
#
#   scripts/isolation.sh [api_load options]     # e.g. --secs 30 --rounds 5; --help lists them
#   scripts/isolation.sh --rps 0 --ws 0         # A/A run: the same with no load (noise floor)
#
# The harness always stops hft (SIGTERM; the kernel sends it SIGTERM too if the harness dies).
set -euo pipefail
cd "$(dirname "$0")/.."

core=1
prev=""
for a in "$@"; do
  [ "$prev" = --core ] && core=$a
  prev=$a
done

cargo build --release -q -p hft-control --bin hft
cargo build --release -q -p hft-benches --bin api_load

if [ "$core" != none ]; then
  echo "--- host report (scripts/tune-host.sh --core $core) ---"
  scripts/tune-host.sh --core "$core" || true
  echo "--- measurement ---"
fi
exec target/release/api_load --hft target/release/hft "$@"
