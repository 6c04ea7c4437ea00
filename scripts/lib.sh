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
