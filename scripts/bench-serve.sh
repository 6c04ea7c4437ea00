#!/usr/bin/env bash
# Load benchmark of `warden serve` on loopback with wrk (Debian package
# `wrk`; installed with apt-get when missing and run as root).
#
# Serves text-transform twice: with instance reuse, and with a fresh
# instance per request (`instance-reuse = false`). Measures each with wrk
# (POST, 32 connections), and GET /healthz in the same run as the baseline
# (the server's own floor: routing, middleware, no plugin). Prints
# requests/s, p50 and p99, and the ratios to the baseline.
#
#   scripts/bench-serve.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
PORT="${WARDEN_BENCH_PORT:-18080}"
CONNECTIONS="${WARDEN_BENCH_CONNECTIONS:-32}"

. scripts/lib.sh
require_wrk

cargo build --release -p warden-cli >&2
WARDEN=target/release/warden
WORK="$(mktemp -d)"
# Not `kill "${SERVER:-0}"`: `kill 0` would end this script's whole
# process group when the server never started.
trap '[ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT

"$WARDEN" build plugins/text-transform --out "$WORK/reuse" >&2
mkdir -p "$WORK/fresh/text-transform-fresh"
cp "$WORK/reuse/text-transform/text-transform.wasm" "$WORK/fresh/text-transform-fresh/"
sed -e 's/^name = .*/name = "text-transform-fresh"\ncomponent = "text-transform.wasm"/' \
    -e 's/^instance-reuse = .*/instance-reuse = false/' \
    "$WORK/reuse/text-transform/plugin.toml" > "$WORK/fresh/text-transform-fresh/plugin.toml"

cat > "$WORK/warden.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
data-dir = "data"
max-concurrency = 1024
[plugins]
dirs = ["reuse", "fresh"]
sources = []
TOML
cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "hello warden, a small request body"
wrk.headers["Content-Type"] = "text/plain"
LUA

WARDEN_LOG=warn "$WARDEN" serve -f "$WORK/warden.toml" 2>"$WORK/server.log" &
SERVER=$!
wait_ready "$PORT" 10 "$WORK/server.log"

URL="http://127.0.0.1:$PORT"
read -r BASE_RPS BASE_P50 BASE_P99 < <(measure "$URL/healthz")
read -r REUSE_RPS REUSE_P50 REUSE_P99 < <(measure -s "$WORK/post.lua" "$URL/v1/plugins/text-transform/process?op=upper")
read -r FRESH_RPS FRESH_P50 FRESH_P99 < <(measure -s "$WORK/post.lua" "$URL/v1/plugins/text-transform-fresh/process?op=upper")

echo
echo "warden serve on loopback: wrk -t2 -c$CONNECTIONS, ${SECONDS_PER_RUN}s per run, $(nproc) cores shared by wrk and the server"
printf '%-42s %12s %9s %9s %10s\n' "endpoint" "requests/s" "p50 ms" "p99 ms" "vs base"
printf '%-42s %12.0f %9.3f %9.3f %10s\n' "GET /healthz (baseline)" "$BASE_RPS" "$BASE_P50" "$BASE_P99" "1.00x"
for row in "text-transform, instance reuse:$REUSE_RPS:$REUSE_P50:$REUSE_P99" \
           "text-transform, fresh instance per call:$FRESH_RPS:$FRESH_P50:$FRESH_P99"; do
    IFS=: read -r name rps p50 p99 <<<"$row"
    ratio=$(awk -v a="$rps" -v b="$BASE_RPS" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-42s %12.0f %9.3f %9.3f %10s\n' "POST $name" "$rps" "$p50" "$p99" "$ratio"
done
kill -TERM "$SERVER"
wait "$SERVER" || true
