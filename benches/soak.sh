#!/usr/bin/env bash
# Soak: a long load with rotating tokens (the verified-token cache fills,
# entries expire and are replaced) while the gateway's resident memory is
# sampled; prints one sample per line and the growth between the first and
# the last minute. The decision log goes to /dev/null unless
# MFAGATE_BENCH_AUDIT names a file (a 10-minute run writes gigabytes).
#
#   benches/soak.sh                          # 600 s, 1000 tokens, 64 connections
#   SOAK_SECONDS=120 SAMPLE_SECONDS=5 benches/soak.sh
#
# Knobs: SOAK_SECONDS [600], SAMPLE_SECONDS [10], CONNS [64], TOKEN_POOL
# [1000], and those of load.sh.
set -euo pipefail
SOAK_SECONDS=${SOAK_SECONDS:-600}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-10}
CONNS=${CONNS:-64}
export TOKEN_POOL=${TOKEN_POOL:-1000}
export MFAGATE_BENCH_AUDIT=${MFAGATE_BENCH_AUDIT:-/dev/null}
# shellcheck source=benches/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$gateway_pid/status"; }
"${load_cpus[@]}" timeout $((SOAK_SECONDS + 30)) wrk -t"$threads" -c"$CONNS" -d"${SOAK_SECONDS}s" "${auth[@]}" "$url" \
    >"$LOAD_WORK/soak.txt" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")
samples=()
start=$SECONDS
echo "seconds rss_mib"
while kill -0 "$wrk_pid" 2>/dev/null; do
    sample=$(rss)
    samples+=("$sample")
    echo "$((SECONDS - start)) $sample"
    sleep "$SAMPLE_SECONDS"
done
wait "$wrk_pid" || die "wrk failed: $(cat "$LOAD_WORK/soak.txt")"
echo "requests_per_second $(awk '/^Requests\/sec/ { print $2 }' "$LOAD_WORK/soak.txt")"
grep -E 'Non-2xx|Socket errors' "$LOAD_WORK/soak.txt" || true
per_minute=$((60 / SAMPLE_SECONDS))
printf '%s\n' "${samples[@]}" | awk -v m="$per_minute" '
    { v[NR] = $1 }
    END {
        if (NR < 2 * m) { print "too few samples for a first and last minute"; exit }
        for (i = 1; i <= m; i++) { first += v[i]; last += v[NR - m + i] }
        printf "first_minute_mib %.1f\nlast_minute_mib %.1f\ngrowth_mib %.1f\n", first / m, last / m, (last - first) / m
    }'
