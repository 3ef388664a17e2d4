#!/usr/bin/env bash
# Load benchmark: an nginx upstream answering 200, mfagate (release build,
# benches/gateway.toml through benches/harness-gateway.sh: full enforcement,
# metrics and the decision log on) and wrk (HTTP/1.1) or h2load (HTTP/2), all
# on 127.0.0.1. Prints requests/s, latency percentiles and the CPU time the
# gateway and the upstream used per request.
#
#   benches/load.sh                      # 64 connections, 10 s, one token, cached
#   PINNED=1 benches/load.sh             # load on CPU 0, upstream + gateway on CPU 1
#   TOKEN_POOL=1000 benches/load.sh      # rotate 1000 distinct valid tokens
#   MFAGATE__IDENTITY__TOKEN_CACHE_SIZE=0 benches/load.sh   # verify every token
#   PROFILES="load lat h2" benches/load.sh
#   STORE=local benches/load.sh          # a per-oid route limit, buckets in the process
#   STORE=redis benches/load.sh          # the same limit in a redis-server: its µs/req too
#
# Knobs (environment, defaults in brackets): DURATION [10] and WARMUP [2]
# seconds, CONNS [64], PROFILES ["load lat"; also "h2"], PINNED [0],
# TOKEN_POOL [0], STORE [unset: no rate limit; local, redis], UPSTREAM_PORT
# [18180], GATEWAY_PORT [18190], ADMIN_PORT [18191], REDIS_PORT [18192], LOAD_WORK [/tmp/mfagate-load], MFAGATE_BIN [target/release/mfagate,
# built if missing], PERF_RECORD [unset; a file: perf record of the gateway
# during the load profile, PERF_CALL_GRAPH e.g. "dwarf" for call graphs]; any
# MFAGATE__SECTION__KEY override reaches the gateway.
# Needs wrk, h2load (nghttp2-client), nginx and openssl: installed with
# apt-get when missing and running as root.
set -euo pipefail

set -euo pipefail
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
PROFILES=${PROFILES:-load lat}
# shellcheck source=benches/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

# ------------------------------------------------------------- the load --
"${load_cpus[@]}" wrk -t"$threads" -c"$CONNS" -d"${WARMUP}s" "${auth[@]}" "$url" >/dev/null

printf '%-6s %10s %9s %9s %9s %9s %14s %14s %12s\n' profile req/s p50 p90 p99 mean "gateway µs/req" "upstream µs/req" \
    "redis µs/req"
for profile in $PROFILES; do
    case $profile in
        load) cmd=(wrk -t"$threads" -c"$CONNS" -d"${DURATION}s" --latency "${auth[@]}" "$url") ;;
        lat) cmd=(wrk -t1 -c1 -d"${DURATION}s" --latency "${auth[@]}" "$url") ;;
        h2) cmd=(h2load -t"$threads" -c"$CONNS" -m1 -D "$DURATION" \
                -H "Authorization: Bearer $(<"$LOAD_WORK/tokens/valid.jwt")" "$url") ;;
        *) die "unknown profile $profile (load, lat, h2)" ;;
    esac
    perf_pid=""
    if [[ -n ${PERF_RECORD:-} && $profile == load ]]; then
        perf record -q -e cpu-clock -F 2999 ${PERF_CALL_GRAPH:+--call-graph "$PERF_CALL_GRAPH"} \
            -o "$PERF_RECORD" -p "$gateway_pid" 2>"$LOAD_WORK/perf.log" &
        perf_pid=$!
    fi
    g0=$(ticks "$gateway_pid") u0=$(ticks "$upstream_pid") r0=$([[ -n $store_pid ]] && ticks "$store_pid" || echo 0)
    out=$("${load_cpus[@]}" timeout $((DURATION + 30)) "${cmd[@]}" 2>&1) || die "$profile: ${cmd[0]} failed: $out"
    g1=$(ticks "$gateway_pid") u1=$(ticks "$upstream_pid") r1=$([[ -n $store_pid ]] && ticks "$store_pid" || echo 0)
    if [[ -n $perf_pid ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
    printf '%s\n' "$out" >"$LOAD_WORK/$profile.txt"
    if [[ ${cmd[0]} == wrk ]]; then
        requests=$(awk '/requests in/ { print $1 }' <<<"$out")
        rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
        pct() { awk -v p="$1" '$1 == p { print $2 }' <<<"$out"; }
        p50=$(pct 50%) p90=$(pct 90%) p99=$(pct 99%)
        mean=$(awk '/Latency/ { print $2; exit }' <<<"$out")
        errors=$(awk '/Non-2xx|Socket errors/' <<<"$out")
    else
        requests=$(awk '/^requests:/ { print $8 }' <<<"$out")
        rps=$(awk '/^finished in/ { print $4 }' <<<"$out")
        p50=- p90=- p99=-
        mean=$(awk '/^time for request:/ { print $6; exit }' <<<"$out")
        errors=$(awk '/^status codes:/ && ($5 != 0 || $7 != 0 || $9 != 0) { print }' <<<"$out")
        [[ $(awk '/^requests:/ { print $10 }' <<<"$out") == 0 ]] || errors+=" failed requests"
    fi
    [[ -z $errors ]] || log "$profile: $errors"
    per_req() { awk -v d="$1" -v n="$requests" -v hz="$hz" 'BEGIN { printf "%.1f", n ? d * 1e6 / hz / n : 0 }'; }
    printf '%-6s %10s %9s %9s %9s %9s %14s %14s %12s\n' "$profile" "$rps" "$p50" "$p90" "$p99" "$mean" \
        "$(per_req $((g1 - g0)))" "$(per_req $((u1 - u0)))" "$([[ -n $store_pid ]] && per_req $((r1 - r0)) || echo -)"
done
log "tool output in $LOAD_WORK/{load,lat,h2}.txt; gateway log $LOAD_WORK/gateway.log"
