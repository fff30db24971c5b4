#!/usr/bin/env bash
# Builds the FROM-scratch replica image: a statically linked binary (glibc static-pie, no
# musl target needed) plus a HEALTHCHECK that runs `replica probe`.
# Usage: replica/build-image.sh [TAG=mcp-load/replica:latest]
set -euo pipefail
TAG=${1:-mcp-load/replica:latest}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# Own target dir: the static RUSTFLAGS would otherwise invalidate the normal build cache.
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}-static
command -v docker >/dev/null || { echo "build-image: docker not found" >&2; exit 1; }
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p replica --bin replica \
  --target x86_64-unknown-linux-gnu --target-dir "$TARGET_DIR" --manifest-path "$ROOT/Cargo.toml"
CONTEXT=$(mktemp -d)
trap 'rm -rf "$CONTEXT"' EXIT
cp "$TARGET_DIR/x86_64-unknown-linux-gnu/release/replica" "$HERE/Dockerfile" "$CONTEXT/"
strip "$CONTEXT/replica" 2>/dev/null || true
docker build -q -t "$TAG" "$CONTEXT" >/dev/null
echo "built $TAG ($(du -h "$CONTEXT/replica" | cut -f1) binary)"
