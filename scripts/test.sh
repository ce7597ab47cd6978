#!/usr/bin/env bash
# Sets up what is missing, then runs every check: formatting, lints, and the whole test suite
# (unit tests, integration tests against real guests built from source, CLI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { printf '\n[test] %s\n' "$*"; }

step "cargo fmt --check (host and guests)"
cargo fmt --all --check
(cd guests && cargo fmt --all --check)

step "cargo clippy -D warnings (host, all targets)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
step "cargo clippy -D warnings (guests, wasm32-wasip2)"
cargo clippy --manifest-path guests/Cargo.toml --target wasm32-wasip2 --quiet -- -D warnings

step "guest logic and SDK unit tests (native)"
cargo test --manifest-path guests/Cargo.toml -p sluice-order-logic -p sluice-sdk --quiet

step "host workspace tests (builds the guests from source)"
cargo test --workspace --quiet

echo
echo "[test] all checks passed"
