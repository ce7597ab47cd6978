#!/usr/bin/env bash
# Sets up what is missing, builds the guest components and runs the order-pipeline demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "[demo] building the guest components for wasm32-wasip2"
cargo build --quiet --release --target wasm32-wasip2 --manifest-path guests/Cargo.toml
echo "[demo] building sluice"
cargo build --quiet --release -p sluice
data_dir="${SLUICE_DATA_DIR:-$(mktemp -d)}"
"$CARGO_TARGET_DIR/release/sluice" demo --components "$CARGO_TARGET_DIR/wasm32-wasip2/release" --data-dir "$data_dir" "$@"
echo "[demo] state is in $data_dir/sluice.redb; run again with SLUICE_DATA_DIR=$data_dir to see every event answered from its dedupe record"
