#!/usr/bin/env bash
# Idle memory per held session: a fresh replica per transport, 9,000 (or $1) connections each
# holding an initialized session, RSS delta / connections. See replica/examples/idle_memory.rs.
# Usage: benches/replica/idle-memory.sh [CONNS=9000] [THREADS=1]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build -q --release -p replica --bin replica --example idle_memory --manifest-path "$ROOT/Cargo.toml"
"$CARGO_TARGET_DIR/release/examples/idle_memory" --conns "${1:-9000}" --threads "${2:-1}"
