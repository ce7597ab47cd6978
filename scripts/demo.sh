#!/usr/bin/env bash
# The order-pipeline demo, the way a user runs Sluice: start the host with `sluice up`, then
# deploy the seven stages, the order workflow and a trigger with the CLI, publish sample
# orders, and read back what every execution ended with.
#
#   scripts/demo.sh               the host and the CLI (this script)
#   scripts/demo.sh --in-process  the older built-in demo (`sluice demo --nats`, then
#                                 `sluice demo`): the same pipeline inside one process
#
# Sets up what is missing first (scripts/setup.sh), builds the guests and the release binary,
# and stops everything it started (the host, and with it its managed nats-server) by PID,
# also when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "[demo] building the guest components for wasm32-wasip2"
cargo build --quiet --release --target wasm32-wasip2 --manifest-path guests/Cargo.toml
echo "[demo] building sluice"
cargo build --quiet --release -p sluice
sluice="$CARGO_TARGET_DIR/release/sluice"
guests="$CARGO_TARGET_DIR/wasm32-wasip2/release"

if [ "${1:-}" = "--in-process" ]; then
    shift
    # The order pipeline as it runs in production, in one process: a nats-server, the host
    # with seven stages chained through subjects, orders published over NATS, results read
    # back from JetStream; then as workflow executions.
    data_dir="$(mktemp -d)"
    echo "[demo] starting nats-server and the host (state in $data_dir)"
    "$sluice" demo --nats --components "$guests" --data-dir "$data_dir" "$@"
    echo
    echo "[demo] the same pipeline in-process, then every event redelivered to show the dedupe:"
    "$sluice" demo --components "$guests" --data-dir "$data_dir/in-process"
    exit 0
fi

work="$(mktemp -d)"
host_pid=""

# Stop the host (it finishes its batches, drains its outbox and stops its nats-server);
# if it does not stop in 30 s, kill it and the nats-server it left. On failure, show the end
# of its log and keep the work directory to look at.
cleanup() {
    local rc=$?
    if [ -n "$host_pid" ] && kill -0 "$host_pid" 2>/dev/null; then
        echo "[demo] stopping the host (pid $host_pid)"
        kill -TERM "$host_pid" 2>/dev/null || true
        for _ in $(seq 300); do
            kill -0 "$host_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$host_pid" 2>/dev/null; then
            echo "[demo] the host did not stop in 30 s: killing it" >&2
            kill -KILL "$host_pid" 2>/dev/null || true
            local nats_pid
            nats_pid="$(cat "$work/data/nats/nats-server.pid" 2>/dev/null || true)"
            [ -n "$nats_pid" ] && kill -TERM "$nats_pid" 2>/dev/null || true
        fi
        wait "$host_pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        echo "[demo] failed (exit $rc); the host's log ($work/host.log) ends:" >&2
        tail -n 30 "$work/host.log" >&2 2>/dev/null || true
        echo "[demo] the work directory is kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Tables need a declaration: the store opens with the tables the declaration lists, and the
# API has no route that creates one. So the host starts from a declaration of the orders
# table alone (its two indexes); everything else (stages, workflow, trigger) goes through
# the API with the CLI.
cat >"$work/tables.json" <<'EOF'
{
  "stages": [],
  "tables": [
    { "name": "orders", "indexes": [
      { "name": "by-user", "pk_attr": "userId", "sk_attr": "createdAt" },
      { "name": "by-status", "pk_attr": "status", "sk_attr": "createdAt" } ] }
  ],
  "triggers": []
}
EOF

# The host and its data directory; the CLI finds both through these two variables.
export SLUICE_DATA_DIR="$work/data"
start_host() {
    local what=$1
    shift
    : >"$work/host.log"
    "$sluice" up --data-dir "$SLUICE_DATA_DIR" --listen 127.0.0.1:0 "$@" 2>>"$work/host.log" &
    host_pid=$!
    for _ in $(seq 1200); do
        grep -q "sluice is up" "$work/host.log" && break
        kill -0 "$host_pid" 2>/dev/null || { echo "[demo] the host exited" >&2; exit 1; }
        sleep 0.1
    done
    grep -q "sluice is up" "$work/host.log" || { echo "[demo] the host did not come up in 120 s" >&2; exit 1; }
    SLUICE_URL="$(sed -n 's|.*api on \(http://[^/]*\)/v1.*|\1|p' "$work/host.log" | tail -n 1)"
    export SLUICE_URL
    echo "[demo] host $what (pid $host_pid): API on $SLUICE_URL, state in $SLUICE_DATA_DIR"
}
stop_host() {
    kill -TERM "$host_pid"
    wait "$host_pid"
    host_pid=""
}

echo "[demo] starting sluice up with a managed nats-server"
start_host "up" --config "$work/tables.json"

echo
echo "[demo] \$ sluice stage deploy ... (the seven stages of the order pipeline)"
mkdir -p "$work/config"
echo '{"grants": {"kv_buckets": ["inventory"]}}' >"$work/config/process-inventory.json"
echo '{"grants": {"kv_buckets": ["stats"]}}' >"$work/config/aggregate.json"
echo '{"grants": {"tables": [{"name": "orders", "indexes": [
  {"name": "by-user", "pk_attr": "userId", "sk_attr": "createdAt"},
  {"name": "by-status", "pk_attr": "status", "sk_attr": "createdAt"}]}]}}' >"$work/config/store-order.json"
echo '{"grants": {"emit_subjects": ["notifications."]}}' >"$work/config/notify.json"
for stage in validate-order process-order process-payment process-inventory aggregate store-order notify; do
    component="$guests/${stage//-/_}.wasm"
    if [ -f "$work/config/$stage.json" ]; then
        "$sluice" stage deploy "$stage" "$component" --config "$work/config/$stage.json"
    else
        "$sluice" stage deploy "$stage" "$component"
    fi
done

# Stock for three SKUs (the others are untracked: unlimited), so one order runs out: set with
# a counter stage invoked once per SKU, then removed.
echo
echo "[demo] \$ sluice stage invoke seed-stock ... (stock: GPU-1 2, LAMP-7 10, BOOK-1 100)"
echo '{"grants": {"kv_buckets": ["inventory"]}}' >"$work/config/seed-stock.json"
"$sluice" stage deploy seed-stock "$guests/kv_counter.wasm" --config "$work/config/seed-stock.json" >/dev/null
for stock in GPU-1:2 LAMP-7:10 BOOK-1:100; do
    "$sluice" stage invoke seed-stock "{\"bucket\": \"inventory\", \"key\": \"stock/${stock%%:*}\", \"delta\": ${stock##*:}}" 2>/dev/null |
        tr -d '\n '
    echo "  stock/${stock%%:*}"
done
"$sluice" stage delete seed-stock

echo
echo "[demo] \$ sluice workflow deploy order-pipeline workflows/order-pipeline.asl.json"
"$sluice" workflow deploy order-pipeline workflows/order-pipeline.asl.json

echo
echo "[demo] \$ sluice trigger add orders-trigger.json (orders.new starts order-pipeline)"
# The trigger creates the stream ORDERS; it also captures the executions' outputs
# (orders.done) and the notify stage's messages (notifications.order), so they are kept.
cat >"$work/orders-trigger.json" <<'EOF'
{
  "name": "orders",
  "stream": "ORDERS",
  "stream_subjects": ["orders.>", "notifications.>"],
  "filter_subject": "orders.new",
  "workflow": "order-pipeline",
  "output_subject": "orders.done"
}
EOF
"$sluice" trigger add "$work/orders-trigger.json"
"$sluice" trigger list

echo
echo "[demo] \$ sluice publish orders.new ORDER --id ORDER-ID (eight sample orders)"
# The sample orders of the in-process demo (host/sluice/src/demo.rs): some go through, some
# are refused (no items, a declined card, out of stock, a payment service that stays down).
cat >"$work/orders.jsonl" <<'EOF'
{"orderId":"o-1001","userId":"u-alice","createdAt":"2026-11-26T10:01:00Z","items":[{"sku":"BOOK-1","qty":2,"price":12.5},{"sku":"PEN-3","qty":3,"price":1.99}],"payment":{"method":"card","card":"4242424242424242"}}
{"orderId":"o-1002","userId":"u-bob","createdAt":"2026-11-26T10:02:00Z","items":[{"sku":"LAMP-7","qty":1,"price":49.0}],"payment":{"method":"card","card":"5555555555554444"}}
{"orderId":"o-1003","userId":"u-alice","createdAt":"2026-11-26T10:03:00Z","items":[{"sku":"GPU-1","qty":1,"price":899.99}],"payment":{"method":"card","card":"4242424242424242"}}
{"orderId":"o-1004","userId":"u-bob","createdAt":"2026-11-26T10:04:00Z","items":[],"payment":{"method":"card","card":"4242424242424242"}}
{"orderId":"o-1005","userId":"u-carol","createdAt":"2026-11-26T10:05:00Z","items":[{"sku":"BOOK-1","qty":1,"price":12.5}],"payment":{"method":"card","card":"4000000000000000"}}
{"orderId":"o-1006","userId":"u-carol","createdAt":"2026-11-26T10:06:00Z","items":[{"sku":"GPU-1","qty":5,"price":899.99}],"payment":{"method":"card","card":"4242424242424242"}}
{"orderId":"o-1007","userId":"u-dave","createdAt":"2026-11-26T10:07:00Z","items":[{"sku":"PEN-3","qty":10,"price":1.99}],"payment":{"method":"flaky"}}
{"orderId":"o-1008","userId":"u-carol","createdAt":"2026-11-26T10:08:00Z","items":[{"sku":"PEN-3","qty":1,"price":1.99},{"sku":"LAMP-7","qty":2,"price":49.0}],"payment":{"method":"card","card":"4242424242424242"}}
EOF
total=0
while IFS= read -r order; do
    id="$(sed -n 's/.*"orderId":"\([^"]*\)".*/\1/p' <<<"$order")"
    # The event id names the execution the trigger starts: `order-pipeline/<id>`.
    "$sluice" publish orders.new "$order" --id "$id"
    total=$((total + 1))
done <"$work/orders.jsonl"

echo
echo "[demo] waiting for the $total executions to end"
started=$SECONDS
ended=0
while [ "$ended" -lt "$total" ]; do
    if [ $((SECONDS - started)) -gt 120 ]; then
        echo "[demo] only $ended of $total executions ended in 120 s" >&2
        "$sluice" workflow list order-pipeline >&2 || true
        exit 1
    fi
    sleep 0.5
    ended=$({
        "$sluice" workflow list order-pipeline --status SUCCEEDED
        "$sluice" workflow list order-pipeline --status FAILED
    } | grep -c '^o-' || true)
done
echo "[demo] all $total ended in about $((SECONDS - started)) s (o-1007 waits out its Retry backoff)"

echo
echo "[demo] \$ sluice workflow list order-pipeline --status SUCCEEDED"
"$sluice" workflow list order-pipeline --status SUCCEEDED
echo
echo "[demo] \$ sluice workflow list order-pipeline --status FAILED"
"$sluice" workflow list order-pipeline --status FAILED
echo
echo "[demo] \$ sluice workflow describe order-pipeline o-1001"
"$sluice" workflow describe order-pipeline o-1001
echo
echo "[demo] \$ sluice workflow describe order-pipeline o-1006"
"$sluice" workflow describe order-pipeline o-1006
echo
echo "[demo] \$ sluice workflow history order-pipeline o-1004"
"$sluice" workflow history order-pipeline o-1004
echo
echo "[demo] \$ sluice trigger describe orders"
"$sluice" trigger describe orders | sed '/^definition:/,$d'

echo
echo "[demo] stopping the host with SIGTERM (pid $host_pid)"
stop_host
tail -n 3 "$work/host.log"
