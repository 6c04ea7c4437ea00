# Shared by the scripts; sourced, not run.

# Installs wrk (Debian package `wrk`) with apt-get when it is missing and
# this runs as root; otherwise says how and fails.
require_wrk() {
    command -v wrk >/dev/null && return 0
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    else
        echo "wrk is missing: apt-get install wrk" >&2
        exit 1
    fi
}

# Sets WARDEN to the `warden` binary: $WARDEN_BIN when set (CI's, from its
# test run), else a fresh release build.
find_warden() {
    if [ -n "${WARDEN_BIN:-}" ]; then
        WARDEN="$(realpath "$WARDEN_BIN")"
    else
        cargo build --release -p warden-cli >&2
        WARDEN="$PWD/target/release/warden"
    fi
}

# Waits up to $2 seconds for the server at 127.0.0.1:$1 to be ready; if it
# never is, prints its log ($3) and fails.
wait_ready() {
    for _ in $(seq 1 $(($2 * 5))); do
        curl -sf "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    cat "$3" >&2
    exit 1
}

# Prints "requests/s p50_ms p99_ms" for one wrk run of $SECONDS_PER_RUN
# seconds over $CONNECTIONS connections; fails on any non-2xx answer.
measure() {
    local out
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$@")
    local rps p50 p99
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    local non2xx
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    if [ -n "$non2xx" ]; then
        echo "wrk saw $non2xx non-2xx responses:" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}

# wrk prints latencies as 512.00us, 1.20ms or 1.02s.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else { print v }
    }'
}
