#!/usr/bin/env bash
# Soak of `warden serve`: mixed traffic over every example plugin `warden up`
# serves, in every language, under 64 connections (wrk, Debian package `wrk`), with hot
# reloads and a canary (deploy, 30% share, promote) in the middle. Prints the
# calls, the non-2xx answers by plugin, status and problem type, p50 and p99,
# and the server's resident memory at the start, the middle and the end, and
# its growth over the last third of the run from a reading every 10 seconds
# (2 in a run shorter than 5 minutes).
#
#   scripts/soak.sh [seconds, default 1800]
#   WARDEN_BIN=target/release/warden scripts/soak.sh 60   # CI's short run
#
# Exits non-zero when any answer was not 2xx.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-1800}"
PORT="${WARDEN_SOAK_PORT:-18090}"
CONNECTIONS="${WARDEN_SOAK_CONNECTIONS:-64}"
TOKEN="soak-admin-token-0123456789abcdef"

. scripts/lib.sh
require_wrk

# WARDEN_BIN: a `warden` binary already built (CI's, from the test run).
find_warden
WORK="$(mktemp -d)"
cleanup() {
    for pid in ${SERVER:-} ${ORIGIN:-} ${WRK:-} ${SAMPLER:-}; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# url-fetcher's manifest asks for https://example.com, which a soak without
# network cannot reach: a copy of the same component asks for a second,
# empty `warden serve` on loopback instead (and is granted it), and fetches
# its /healthz. (Fetching from the soaked server itself would make each
# fetch wait behind the 64 connections it is part of.) It is deployed once
# `warden up` has built the examples.
ORIGIN_PORT=$((PORT + 1))
FETCHER="$WORK/url-fetcher-local"
mkdir -p "$FETCHER" "$WORK/origin"
sed -e 's/^name = .*/name = "url-fetcher-local"/' \
    -e "s|origin = \"https://example.com\"|origin = \"http://127.0.0.1:$ORIGIN_PORT\"|" \
    plugins/url-fetcher/plugin.toml > "$FETCHER/plugin.toml"
# A 1x1 PNG for image-processor.
echo "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==" \
    | base64 -d > "$WORK/pixel.png"

# The example plugins, built where `warden up` builds them (only what is stale).
cat > "$WORK/warden.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
data-dir = "$WORK/data"
admin-token-file = "$WORK/token"
max-concurrency = 1024
[plugins]
sources = ["$PWD/plugins"]
out = "$PWD/dist"
[grants]
allow = ["http:https://example.com", "http:http://127.0.0.1:$ORIGIN_PORT", "link:image-decoder"]
TOML
cat > "$WORK/origin.toml" <<TOML
[server]
listen = "127.0.0.1:$ORIGIN_PORT"
data-dir = "$WORK/origin/data"
admin-token-file = "$WORK/token"
[plugins]
dirs = ["$WORK/origin"]
sources = []
TOML
printf '%s' "$TOKEN" > "$WORK/token"
chmod 600 "$WORK/token"

# Every call of the mix: plugin, query, body. Every processor example (the
# event handlers audit-logger and order-audit-go get order-events' events).
cat > "$WORK/mix.lua" <<'LUA'
local png = io.open("PIXEL_PNG", "rb"):read("*a")
local calls = {
  {"text-transform", "op=upper", "hello warden, a soak request"},
  {"json-transform", "case=camel", '{"first_name":"Ada","age":36}'},
  {"risk-rules", "", '{"id":"t9","amount":25000,"country":"KP","hour":3}'},
  {"counter", "op=incr&key=soak", ""},
  {"word-count", "", "the quick brown fox jumps over the lazy dog"},
  {"word-count-py", "", "the quick brown fox jumps over the lazy dog"},
  {"word-count-js", "", "the quick brown fox jumps over the lazy dog"},
  {"word-count-go", "", "the quick brown fox jumps over the lazy dog"},
  {"word-count-c", "", "the quick brown fox jumps over the lazy dog"},
  {"standard-interfaces", "op=incr&key=soak", ""},
  {"checksum", "", "hello warden"},
  {"csv-summary", "", "a,b\n1,2\n3,4\n"},
  {"json-validate", "schema=%7B%22required%22%3A%5B%22name%22%5D%7D", '{"name":"Ada"}'},
  {"template-render", "name=Ann", "Hello {{name}}"},
  {"text-stats", "", "One sentence. Two sentences here."},
  {"notes", "op=write&name=soak", "a note"},
  {"order-events", "", '{"id":"o1","customer":"ada","amount":12.5}'},
  {"image-processor", "width=4&height=4&grayscale=true", png},
  {"url-fetcher-local", "url=http://127.0.0.1:ORIGIN_PORT/healthz", ""},
}
local requests = {}
for i, c in ipairs(calls) do
  local path = "/v1/plugins/" .. c[1] .. "/process"
  if c[2] ~= "" then path = path .. "?" .. c[2] end
  requests[i] = wrk.format("POST", path, {["Content-Type"] = "text/plain"}, c[3])
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) n = 0; failures = {} end
function request()
  n = n + 1
  return requests[(n % #requests) + 1]
end
function response(status, headers, body)
  if status >= 300 then
    local plugin = string.match(body or "", '"plugin":"([^"]*)"') or "?"
    local kind = string.match(body or "", '"type":"([^"]*)"') or "?"
    local key = plugin .. " " .. status .. " " .. kind
    failures[key] = (failures[key] or 0) + 1
  end
end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("failures")) do all[k] = (all[k] or 0) + v end
  end
  io.write(string.format("calls %d\n", summary.requests))
  io.write(string.format("p50_ms %.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("p99_ms %.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("errors %d\n", summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
  for k, v in pairs(all) do io.write(string.format("non2xx %s %d\n", k, v)) end
end
LUA
sed -i -e "s|PIXEL_PNG|$WORK/pixel.png|" -e "s|ORIGIN_PORT|$ORIGIN_PORT|" "$WORK/mix.lua"

WARDEN_LOG=warn "$WARDEN" serve -f "$WORK/origin.toml" 2>"$WORK/origin.log" &
ORIGIN=$!
WARDEN_LOG=warn "$WARDEN" up -f "$WORK/warden.toml" 2>"$WORK/server.log" &
SERVER=$!
wait_ready "$PORT" 600 "$WORK/server.log"
URL="http://127.0.0.1:$PORT"
rss() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
admin() {
    curl -sf -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
        "$URL/v1/admin/$1" ${2:+--data "$2"} >/dev/null
}

cp dist/url-fetcher/url-fetcher.wasm "$FETCHER/url-fetcher-local.wasm"
admin deploy "{\"path\":\"$FETCHER\"}"

# Warm up (first calls compile nothing but make the first instances).
wrk -t2 -c"$CONNECTIONS" -d5s -s "$WORK/mix.lua" "$URL" >/dev/null
RSS_START=$(rss)
# RSS at one moment swings by ±5–7% around its level; a reading every 10 s
# (2 s in a short run) gives the trend.
SAMPLE_EVERY=$((DURATION >= 300 ? 10 : 2))
while sleep "$SAMPLE_EVERY"; do echo "$(date +%s) $(rss)"; done >"$WORK/rss.log" &
SAMPLER=$!
RUN_START=$(date +%s)
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$WORK/mix.lua" "$URL" >"$WORK/wrk.out" &
WRK=$!

# Version 0.1.1 of text-transform, for the canary.
CANARY="$WORK/text-transform-0.1.1"
mkdir -p "$CANARY"
cp dist/text-transform/text-transform.wasm "$CANARY/"
sed 's/^version = .*/version = "0.1.1"/' dist/text-transform/plugin.toml > "$CANARY/plugin.toml"

sleep "$((DURATION / 3))"
RSS_THIRD=$(rss)
for plugin in text-transform word-count-js word-count-py counter; do
    admin "plugins/$plugin/reload"
done
admin deploy "{\"path\":\"$CANARY\"}"
admin "plugins/text-transform/canary" '{"version":"0.1.1","percent":30}'
sleep "$((DURATION / 6))"
RSS_MIDDLE=$(rss)
admin "plugins/text-transform/promote"
sleep "$((DURATION / 6))"
RSS_TWO_THIRDS=$(rss)
wait "$WRK"
WRK=
RSS_END=$(rss)
kill "$SAMPLER" 2>/dev/null || true
SAMPLER=

cat "$WORK/wrk.out"
echo "rss_mib start $RSS_START third $RSS_THIRD middle $RSS_MIDDLE two-thirds $RSS_TWO_THIRDS end $RSS_END"
# Growth over the last third: the least-squares line through its readings,
# from its value at the third's start to its value at the end, against the
# first; with the readings' range, to show how far one reading strays.
awk -v from="$((RUN_START + DURATION * 2 / 3))" '
    $1 >= from && $2 != "" { n++; t[n] = $1; r[n] = $2 }
    END {
        if (n < 2) { print "rss growth over the last third: too few readings"; exit }
        for (i = 1; i <= n; i++) { st += t[i]; sr += r[i] }
        mt = st / n; mr = sr / n; lo = hi = r[1]
        for (i = 1; i <= n; i++) {
            sxy += (t[i] - mt) * (r[i] - mr); sxx += (t[i] - mt) ^ 2
            if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i]
        }
        slope = sxx > 0 ? sxy / sxx : 0
        first = mr + slope * (t[1] - mt); last = mr + slope * (t[n] - mt)
        printf "rss growth over the last third: %+.1f%% (line through %d readings, %.0f -> %.0f MiB; readings %.0f-%.0f MiB)\n",
            (last - first) * 100 / first, n, first, last, lo, hi
    }' "$WORK/rss.log"
# From a histogram of the server's metrics, by the labels named in `keys`
# (joined with @): the bucket that holds p50 and p99, and the observations
# over 10 ms (which of them make the tail).
histogram() {
    curl -sf "$URL/metrics" | awk -F'[{}", ]+' -v metric="$1_bucket" -v keys="$2" '
        $1 == metric {
            for (i = 2; i < NF; i++) if ($i ~ /=$/) label[substr($i, 1, length($i) - 1)] = $(i + 1)
            n = split(keys, names, ","); key = label[names[1]]
            for (k = 2; k <= n; k++) key = key "@" label[names[k]]
            c = ++count[key]; bound[key, c] = label["le"]; total[key, c] = $NF
        }
        END {
            for (p in count) {
                all = total[p, count[p]]
                if (all == 0) continue
                p50 = ""; p99 = ""; slow = 0
                for (n = 1; n <= count[p]; n++) {
                    if (p50 == "" && total[p, n] >= all * 0.5) p50 = bound[p, n]
                    if (p99 == "" && total[p, n] >= all * 0.99) p99 = bound[p, n]
                    if (bound[p, n] == "0.01") slow = all - total[p, n]
                }
                printf "  %-26s %9d  p50 <= %s  p99 <= %s  over 10 ms %d\n", p, all, p50 * 1000, p99 * 1000, slow
            }
        }' | sort
}
echo "server-side request time by route (upper bucket bound, ms):"
histogram warden_http_request_duration_seconds route
echo "host-side call time by plugin (upper bucket bound, ms):"
histogram warden_plugin_call_duration_seconds plugin,version
echo "instances recycled:"
curl -sf "$URL/metrics" | grep -E '^warden_plugin_instances_recycled_total' | awk '$2 > 0' || true
kill -TERM "$SERVER"
wait "$SERVER" || true
SERVER=
if grep -q '^non2xx' "$WORK/wrk.out" || ! grep -q '^errors 0$' "$WORK/wrk.out"; then
    echo "soak: some calls failed" >&2
    exit 1
fi
