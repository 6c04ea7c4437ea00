#!/usr/bin/env bash
# Resident memory of `warden up` idle over every example plugin: once with
# an empty compiled-plugin cache (every plugin compiled in the process) and
# once loading the same plugins from that cache. Prints both, the compiled
# code on disk, and each plugin's instance memory as `/metrics` reports it.
#
#   scripts/idle-rss.sh
#   WARDEN_BIN=target/release/warden scripts/idle-rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${WARDEN_RSS_PORT:-18095}"
. scripts/lib.sh

find_warden
WORK="$(mktemp -d)"
trap '[ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
cat > "$WORK/warden.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
data-dir = "$WORK/data"
[plugins]
sources = ["$PWD/plugins"]
out = "$PWD/dist"
TOML

# Starts `warden up` on the cache in $WORK/cache, waits until it is ready
# and has been idle for 5 s, sets RSS to its resident memory in MiB, and
# leaves it running.
idle_rss() {
    XDG_CACHE_HOME="$WORK/cache" WARDEN_LOG=warn "$WARDEN" up -f "$WORK/warden.toml" \
        >/dev/null 2>"$WORK/server.log" &
    SERVER=$!
    wait_ready "$PORT" 600 "$WORK/server.log"
    sleep 5
    RSS=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER/status")
}
stop() { kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=; }

# Builds what is stale first, so the cold start below only compiles.
"$WARDEN" build plugins --out dist >/dev/null
idle_rss
COLD=$RSS
stop
idle_rss
WARM=$RSS
PLUGINS=$(curl -sf "http://127.0.0.1:$PORT/readyz" | grep -o '"plugins":\[[^]]*\]' | tr -cd ',' | wc -c)
echo "plugins $((PLUGINS + 1))"
echo "idle_rss_mib compiled-now $COLD from-cache $WARM"
echo "compiled_code_mib $(du -sm "$WORK/cache" | cut -f1)"
echo "instance memory by plugin (MiB):"
curl -sf "http://127.0.0.1:$PORT/metrics" | awk -F'[{}", ]+' '
    /^warden_plugin_memory_bytes/ {
        for (i = 2; i < NF; i++) if ($i == "plugin=") p = $(i + 1)
        printf "  %-22s %6.1f\n", p, $NF / 1048576
    }' | sort
stop
