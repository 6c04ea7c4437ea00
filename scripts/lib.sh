# Shared by the benchmark scripts; sourced, not run.

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
