#!/usr/bin/env bash
# Sets up what is missing, builds the guest components and runs the order-pipeline demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "[demo] building the guest components for wasm32-wasip2"
cargo build --quiet --release --target wasm32-wasip2 --manifest-path guests/Cargo.toml
echo "[demo] building sluice"
cargo build --quiet --release -p sluice
# The order pipeline as it runs in production: a nats-server, the host with seven stages
# chained through subjects, orders published over NATS, results read back from JetStream.
data_dir="$(mktemp -d)"
echo "[demo] starting nats-server and the host (state in $data_dir)"
"$CARGO_TARGET_DIR/release/sluice" demo --nats --components "$CARGO_TARGET_DIR/wasm32-wasip2/release" --data-dir "$data_dir" "$@"
echo
echo "[demo] the same pipeline in-process, then every event redelivered to show the dedupe:"
"$CARGO_TARGET_DIR/release/sluice" demo --components "$CARGO_TARGET_DIR/wasm32-wasip2/release" --data-dir "$data_dir/in-process"
