#!/usr/bin/env bash
# Forwarded calls against local ones: a two-node cluster on one machine
# (Debian's `nats-server -js` on loopback, two `warden serve` nodes), with
# text-transform on node a only. wrk (POST, 32 connections) calls it on
# node a (local) and through node b (forwarded over NATS to node a), in the
# same run, and prints requests/s, p50, p99 and the ratios to the local
# call.
#
#   scripts/cluster-bench.sh [seconds per run, default 10]
#   WARDEN_BIN=target/release/warden scripts/cluster-bench.sh 5
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
CONNECTIONS="${WARDEN_BENCH_CONNECTIONS:-32}"
NATS_PORT="${WARDEN_BENCH_NATS_PORT:-14222}"
PORT_A="${WARDEN_BENCH_PORT:-18180}"
PORT_B=$((PORT_A + 1))

. scripts/lib.sh
require_wrk
command -v nats-server >/dev/null || { echo "nats-server is missing: apt-get install nats-server" >&2; exit 1; }
find_warden
WORK="$(mktemp -d)"
cleanup() {
    for pid in ${NODE_A:-} ${NODE_B:-} ${NATS:-}; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
NATS=$!
"$WARDEN" build plugins/text-transform --out "$WORK/a/plugins" >&2
mkdir -p "$WORK/b/plugins"
for node in a b; do
    port=$PORT_A
    [ "$node" = b ] && port=$PORT_B
    cat > "$WORK/$node/warden.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data-dir = "data"
max-concurrency = 1024
[plugins]
dirs = ["plugins"]
sources = []
[cluster]
nats = "nats://127.0.0.1:$NATS_PORT"
name = "$node"
TOML
done
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "hello warden, a small request body"
wrk.headers["Content-Type"] = "text/plain"
LUA

sleep 0.5
WARDEN_LOG=warn "$WARDEN" serve -f "$WORK/a/warden.toml" 2>"$WORK/a.log" &
NODE_A=$!
# Node b serves nothing of its own: /readyz stays 503, so wait for its
# first forwarded answer instead.
WARDEN_LOG=warn "$WARDEN" serve -f "$WORK/b/warden.toml" 2>"$WORK/b.log" &
NODE_B=$!
wait_ready "$PORT_A" 20 "$WORK/a.log"
CALL="/v1/plugins/text-transform/process?op=upper"
for _ in $(seq 1 100); do
    curl -sf -X POST "http://127.0.0.1:$PORT_B$CALL" --data x >/dev/null 2>&1 && break
    sleep 0.2
done

read -r LOCAL_RPS LOCAL_P50 LOCAL_P99 < <(measure -s "$WORK/post.lua" "http://127.0.0.1:$PORT_A$CALL")
read -r FWD_RPS FWD_P50 FWD_P99 < <(measure -s "$WORK/post.lua" "http://127.0.0.1:$PORT_B$CALL")

echo
echo "two-node cluster on loopback: wrk -t2 -c$CONNECTIONS, ${SECONDS_PER_RUN}s per run, $(nproc) cores shared by wrk, both nodes and nats-server"
printf '%-44s %12s %9s %9s %10s\n' "call" "requests/s" "p50 ms" "p99 ms" "vs local"
printf '%-44s %12.0f %9.3f %9.3f %10s\n' "text-transform on node a (local)" "$LOCAL_RPS" "$LOCAL_P50" "$LOCAL_P99" "1.00x"
ratio=$(awk -v a="$FWD_RPS" -v b="$LOCAL_RPS" 'BEGIN { printf "%.2fx", a / b }')
printf '%-44s %12.0f %9.3f %9.3f %10s\n' "through node b (forwarded over NATS)" "$FWD_RPS" "$FWD_P50" "$FWD_P99" "$ratio"
