#!/usr/bin/env bash
# Engine vs wrk, side by side: the same target, the same pinned CPU for the load generator,
# the same connections and duration, each POSTing a JSON-RPC ping over keep-alive HTTP.
#   (a) nginx answering POST /mcp with a fixed JSON-RPC result (engine --stateless)
#   (b) one replica thread (the engine initializes an MCP session per connection; wrk reuses
#       one session minted by curl)
# and the engine's io_uring and epoll reactors on each. The server runs on CPU 0, the load on
# CPU 1. Every figure is measured in this run.
# Usage: benches/throughput.sh [SECONDS=10] [CONNS=100]      Needs: wrk nginx curl python3
set -euo pipefail
SECS=${1:-10}
CONNS=${2:-100}
SERVER_CPU=0
LOAD_CPU=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
for tool in wrk nginx curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install wrk nginx-light curl" >&2; exit 1; }
done
cargo build -q --release -p engine -p replica --manifest-path "$ROOT/Cargo.toml"

WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

NGINX_PORT=18480
sed -e "s|{{PREFIX}}|$WORK|g" -e "s|{{PORT}}|$NGINX_PORT|g" "$ROOT/benches/throughput/nginx.conf" >"$WORK/nginx.conf"
taskset -c $SERVER_CPU nginx -c "$WORK/nginx.conf" -p "$WORK" &
PIDS+=($!)
taskset -c $SERVER_CPU "$BIN/replica" --id bench --threads 1 --tcp off --http 127.0.0.1:0 >"$WORK/replica.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q listening "$WORK/replica.out" && break; sleep 0.05; done
REPLICA=$(grep -o 'http://[^ ]*' "$WORK/replica.out" | head -1)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/mcp" -d '{}' && break; sleep 0.05; done

INIT='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}'
SID=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' -d "$INIT" "$REPLICA/mcp" \
  | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
[ -n "$SID" ] || { echo "replica gave no session id" >&2; exit 1; }

# wrk URL SESSION -> "req/s errors"
wrk_run() {
  MCP_SESSION=$2 taskset -c $LOAD_CPU wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$ROOT/benches/throughput/ping.lua" "$1" >"$WORK/wrk.out"
  awk '/Requests\/sec/ {r=$2} /Non-2xx/ {e=$5} /Socket errors/ {s=$0} END {printf "%.0f %d\n", r, e+0}' "$WORK/wrk.out"
}

# engine URL IO [FLAGS...] -> "req/s errors"
engine_run() {
  local url=$1 io=$2
  shift 2
  taskset -c $LOAD_CPU "$BIN/engine" --target "$url" --conns "$CONNS" --hold "${SECS}s" --interval 0 \
    --ramp 100000/s --workers 1 --io "$io" "$@" --quiet --json --out "$WORK/engine" >"$WORK/summary.json"
  python3 - "$WORK/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
bound = s["resources"]["generator_bound"]
print("%.0f %d%s" % (s["requests"]["per_s"], s["requests"]["failed"], "" if bound is None else "  (generator-bound: %s)" % bound))
PY
}

echo "load on CPU $LOAD_CPU, server on CPU $SERVER_CPU; $CONNS connections, ${SECS}s each; $(uname -r)"
printf '%-8s %-14s %10s %8s\n' target load 'req/s' errors
declare -A RATE
for target in nginx replica; do
  if [ $target = nginx ]; then url="http://127.0.0.1:$NGINX_PORT/mcp"; sid=""; flags=(--stateless)
  else url="$REPLICA/mcp"; sid=$SID; flags=(); fi
  read -r r e <<<"$(wrk_run "$url" "$sid")"; RATE[$target-wrk]=$r
  printf '%-8s %-14s %10s %8s\n' $target wrk "$r" "$e"
  for io in uring epoll; do
    line=$(engine_run "$url" $io "${flags[@]}")
    read -r r e rest <<<"$line"; RATE[$target-$io]=$r
    printf '%-8s %-14s %10s %8s %s\n' $target "engine $io" "$r" "$e" "$rest"
  done
done
for target in nginx replica; do
  awk -v t=$target -v u="${RATE[$target-uring]}" -v e="${RATE[$target-epoll]}" -v w="${RATE[$target-wrk]}" \
    'BEGIN {printf "%-8s engine/wrk: uring %.2f, epoll %.2f; uring/epoll %.2f\n", t, u/w, e/w, u/e}'
done
