#!/usr/bin/env bash
# Sets up what is missing, builds the guests and sluice, and runs the recorded Step Functions
# cases in DIR (default: ../shared/conformance/asl/cases beside the clone) through the
# workflow engine with the Lambda stand-in stages. Prints one line per failing or skipped
# case and ends with "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
cases="$(realpath "${1:-../shared/conformance/asl/cases}")"
source scripts/setup.sh

echo "[conformance] building the guest components for wasm32-wasip2"
cargo build --quiet --release --target wasm32-wasip2 --manifest-path guests/Cargo.toml
echo "[conformance] building sluice"
cargo build --quiet --release -p sluice
"$CARGO_TARGET_DIR/release/sluice" workflow conformance "$cases" \
    --components "$CARGO_TARGET_DIR/wasm32-wasip2/release"
