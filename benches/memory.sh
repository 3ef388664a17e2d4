#!/usr/bin/env bash
# Memory: serves a load (wrk, rotating tokens when TOKEN_POOL is set), then
# holds IDLE keep-alive TLS connections open (benches/idle_connections.py),
# each after one request, and prints the gateway's resident memory at each
# step. The target: at most 64 MiB with 10,000 idle connections.
#
#   benches/memory.sh                 # 10,000 connections after a 10 s load
#   IDLE=20000 LOAD_SECONDS=30 benches/memory.sh
#
# Knobs: IDLE [10000], LOAD_SECONDS [10], CONNS [64], and those of load.sh.
set -euo pipefail
IDLE=${IDLE:-10000}
LOAD_SECONDS=${LOAD_SECONDS:-10}
CONNS=${CONNS:-64}
# The gateway must accept them all (max_connections is 4096 by default).
export MFAGATE__SERVER__MAX_CONNECTIONS=${MFAGATE__SERVER__MAX_CONNECTIONS:-$((IDLE + 1024))}
# The gateway inherits the limit: raise it first.
ulimit -n "$((IDLE + 1024))" 2>/dev/null \
    || { echo "cannot raise the file limit to $((IDLE + 1024)) (ulimit -Hn: $(ulimit -Hn))" >&2; exit 1; }
# shellcheck source=benches/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$gateway_pid/status"; }
python=$(command -v python3)

echo "rss_started_mib $(rss)"
"${load_cpus[@]}" wrk -t"$threads" -c"$CONNS" -d"${LOAD_SECONDS}s" "${auth[@]}" "$url" >"$LOAD_WORK/memory-load.txt"
echo "load_requests_per_second $(awk '/^Requests\/sec/ { print $2 }' "$LOAD_WORK/memory-load.txt")"
echo "rss_after_load_mib $(rss)"
"$python" "$here/idle_connections.py" --port "$GATEWAY_PORT" --token-file "$LOAD_WORK/tokens/valid.jwt" \
    --pid "$gateway_pid" -n "$IDLE"
