#!/usr/bin/env bash
# Keep-alive ping throughput of ONE replica thread (pinned to CPU 0), loaded from CPU 1:
#   HTTP  by wrk (independent tool) and by ping_load,
#   TCP and WebSocket by ping_load (closed loop, one request in flight per connection,
#   then TCP pipelined 16 deep).
# Every figure is measured in this run; the replica's own /metrics count is printed to check them.
# Usage: benches/replica/ping-throughput.sh [DURATION=10s] [CONNS=64]   (DURATION in whole seconds)
# Needs: wrk and curl (apt-get install wrk curl), 2 CPUs.
set -euo pipefail
DURATION=${1:-10s}
CONNS=${2:-64}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found: apt-get install curl" >&2; exit 1; }
cargo build -q --release -p replica --bin replica --example ping_load --manifest-path "$ROOT/Cargo.toml"

READY=$(mktemp)
taskset -c 0 "$BIN/replica" --id bench --threads 1 --tcp 127.0.0.1:0 --http 127.0.0.1:0 >"$READY" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$READY"' EXIT
for _ in $(seq 100); do grep -q listening "$READY" && break; sleep 0.05; done
TCP=$(grep -o 'tcp://[^ ]*' "$READY" | sed 's|tcp://||')
HTTP=$(grep -o 'http://[^ ]*' "$READY" | sed 's|http://||')
echo "replica pid $PID, --threads 1 on CPU 0; load on CPU 1; $CONNS connections, $DURATION each; $(nproc) CPUs, $(uname -r)"

INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}'
SID=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' -d "$INIT" "http://$HTTP/mcp" \
  | tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
[ -n "$SID" ] || { echo "initialize over HTTP gave no session id" >&2; exit 1; }

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
pings() { curl -s "http://$HTTP/metrics" | awk '$1 == "replica_requests_total{method=\"ping\"}" {print $2}'; }
# Runs a load command; then prints the replica's CPU use and CPU time per ping it answered,
# so a load generator that saturates first does not hide the server's capacity.
measured() {
  local c0 p0 c1 p1
  c0=$(cpu_ticks); p0=$(pings)
  "$@"
  c1=$(cpu_ticks); p1=$(pings)
  awk -v c=$((c1 - c0)) -v n=$((p1 - p0)) -v tick="$TICK" -v d="${DURATION%s}" 'BEGIN {
    secs = c / tick
    printf "   replica: %d pings, CPU %.0f%% of its core, %.1f us CPU per ping => ~%.0f pings/s per core\n",
      n, 100 * secs / d, 1e6 * secs / n, n / secs }'
}

echo "== wrk: HTTP POST /mcp ping, keep-alive"
measured bash -c "MCP_SESSION=$SID taskset -c 1 wrk -t1 -c$CONNS -d$DURATION --latency -s $ROOT/benches/replica/ping.lua http://$HTTP/mcp \
  | grep -E 'Requests/sec|Latency|50%|99%|non-result|requests in|Socket errors'"
for t in http tcp ws; do
  addr=$HTTP; [ $t = tcp ] && addr=$TCP
  echo "== ping_load $t"
  measured taskset -c 1 "$BIN/examples/ping_load" --transport $t --addr "$addr" --conns "$CONNS" --duration "$DURATION"
done
echo "== ping_load tcp, pipelined 16 deep"
measured taskset -c 1 "$BIN/examples/ping_load" --transport tcp --addr "$TCP" --conns "$CONNS" --depth 16 --duration "$DURATION"
echo "== replica's own count"
curl -s "http://$HTTP/metrics" | grep -E '^replica_requests_total\{method="ping"\}|^replica_errors_total\{code="-32005"\}'
