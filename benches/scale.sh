#!/usr/bin/env bash
# The 100K job's benchmarks, read from the engine's own summary.json of real runs, once with
# io_uring and once with epoll, against the embedded fleet of 12 replica processes:
#   1. memory: peak RSS of all engine processes (supervisor + shards) while holding the sessions
#   3. connect storm: seconds until every session was initialized at the default ramp, and the
#      host's ListenOverflows / ListenDrops over the run (must stay 0)
#   4. hold cost: worker CPU seconds per minute of hold, each session pinging every 30 s
# Usage: benches/scale.sh [CONNS=100000] [HOLD=2m] [EXTRA ENGINE FLAGS...]
set -euo pipefail
CONNS=${1:-100000}
HOLD=${2:-2m}
shift $(( $# > 2 ? 2 : $# ))
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build -q --release -p engine --manifest-path "$ROOT/Cargo.toml"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "$CONNS sessions, hold $HOLD, ping every 30s; $(nproc) CPUs, $(uname -r); RLIMIT_NOFILE $(ulimit -Hn)"
printf '%-6s %7s %6s %6s %9s %9s %11s %10s %12s %8s\n' io held failed procs 'rss MiB' 'B/sess' 'all init s' overflows 'hold cpu/min' 'cpu s'
for io in uring epoll; do
  "$CARGO_TARGET_DIR/release/engine" --conns "$CONNS" --hold "$HOLD" --io $io "$@" --quiet --json \
    --out "$OUT/$io" >"$OUT/$io.json"
  python3 - "$OUT/$io.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
r, x, h = s["resources"], s["sessions"], s["host"]
print("%-6s %7d %6d %6d %9.1f %9d %11s %10s %12.2f %8.1f" % (
    s["manifest"]["io"], x["open_at_hold_end"], x["failed"], s["manifest"]["processes"],
    r["rss_peak_bytes"] / 2**20, r["rss_per_session_bytes"], x["all_initialized_s"],
    "%s/%s" % (h["listen_overflows"], h["listen_drops"]), r["hold_cpu_s_per_min"], r["cpu_s"]))
if s["errors"] or s["requests"]["failed"]:
    print("       errors: %s" % s["errors"])
if r["generator_bound"]:
    print("       generator-bound: %s" % r["generator_bound"])
PY
done
