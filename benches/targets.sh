#!/usr/bin/env bash
# The performance targets in one run: every target's mfagate figure, its
# reference figure from the same run, the ratio, the bar and whether it is
# met, as one table. All pinned (load generator on CPU 0, upstream and proxy
# on CPU 1, one worker each), on this machine, on 127.0.0.1; every gateway
# figure with enforcement, metrics and the decision log to a file
# (benches/gateway.toml through benches/harness-gateway.sh). Steps:
#
#   cached    the shared harness ($BENCH_DIR/run-anchors.sh): A-upstream,
#             B-nginx-tls (nginx, plain TLS proxy), C-haproxy-tls (HAProxy
#             2.6 checking the JWT) and mfagate with one cached token;
#             profiles load (wrk, 64 connections), lat (one connection), h2
#   uncached  run-anchors.sh again: C-haproxy-tls and mfagate with
#             MFAGATE__IDENTITY__TOKEN_CACHE_SIZE=0, profile load; HAProxy is
#             measured again so that both sides of the ratio share a step
#   memory    benches/memory.sh: mfagate, nginx and HAProxy, each after a
#             5 s load with IDLE idle keep-alive TLS connections
#
#   benches/targets.sh                                  # about 12 min on 2 cores
#   DURATION=3s LAT_DURATION=2s H2_DURATION=2s RUNS=1 IDLE=2000 benches/targets.sh   # about 3 min
#   MFAGATE_BIN=/path/to/mfagate STEPS="cached memory" benches/targets.sh
#
# Prints the table on stdout (also $TARGETS_WORK/targets.md), the harness's
# own tables in $TARGETS_WORK/{cached,uncached}.md, memory.sh's output in
# $TARGETS_WORK/memory.txt; progress on stderr. Exit status 0 when every
# figure was measured (met or not), 1 otherwise.
#
# Needs: the shared bench harness at BENCH_DIR (default ../shared/bench next
# to the repository), a release build (MFAGATE_BIN, default
# target/release/mfagate: cargo build --release), two CPUs, a file limit
# (ulimit -Hn) of at least IDLE + 2048, and wrk, h2load, nginx, haproxy 2.6,
# curl, openssl and python3: the harness's setup.sh installs what is missing
# with apt-get when run as root, and a venv with PyJWT for its tokens.
#
# Knobs (environment, defaults in brackets): RUNS [3] samples per cell (the
# table shows medians), DURATION [10s], WARMUP [2s], LAT_DURATION [5s],
# H2_DURATION [5s], QUIET_WAIT [20], NOISE_LIMIT [10] (the harness's, see its
# README); IDLE [10000] and LOAD_SECONDS [5] (memory.sh); STEPS ["cached
# uncached memory"], a step left out shows as not measured; TARGETS_WORK
# [/tmp/mfagate-targets], holding BENCH_WORK [$TARGETS_WORK/anchors] and
# LOAD_WORK [$TARGETS_WORK/memory]; ports: the harness's UPSTREAM_PORT,
# GATEWAY_PORT, NGINX_HTTP_PORT, NGINX_TLS_PORT, HAPROXY_HTTP_PORT,
# HAPROXY_TLS_PORT, HAPROXY_NOAUTH_PORT, which memory.sh (run after it) reads
# too, and memory.sh's ADMIN_PORT.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

log() { printf '[targets %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }

BENCH_DIR=${BENCH_DIR:-$repo/../shared/bench}
for f in run-anchors.sh report.py lib.sh conf/proxy-nginx.conf.in conf/haproxy-jwt.cfg.in; do
    [[ -e $BENCH_DIR/$f ]] || die "the shared bench harness is not at $BENCH_DIR ($f is missing): set BENCH_DIR"
done
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
export BENCH_DIR
export MFAGATE_BIN=${MFAGATE_BIN:-$repo/target/release/mfagate}
[[ -x $MFAGATE_BIN ]] || die "no gateway binary at $MFAGATE_BIN: cargo build --release, or set MFAGATE_BIN"
STEPS=${STEPS:-cached uncached memory}
for step in $STEPS; do
    case $step in cached | uncached | memory) ;; *) die "unknown step $step (cached, uncached, memory)" ;; esac
done
overrides=$(env | grep -o '^MFAGATE__[A-Z0-9_]*' | tr '\n' ' ' || true)
[[ -z $overrides ]] || log "these reach every gateway figure: $overrides"

export RUNS=${RUNS:-3} DURATION=${DURATION:-10s} LAT_DURATION=${LAT_DURATION:-5s} H2_DURATION=${H2_DURATION:-5s}
export IDLE=${IDLE:-10000} LOAD_SECONDS=${LOAD_SECONDS:-5}
TARGETS_WORK=${TARGETS_WORK:-/tmp/mfagate-targets}
export BENCH_WORK=${BENCH_WORK:-$TARGETS_WORK/anchors}
export LOAD_WORK=${LOAD_WORK:-$TARGETS_WORK/memory}
mkdir -p "$TARGETS_WORK"
rm -f "$TARGETS_WORK"/{cached,uncached}.{md,log,tsv} "$TARGETS_WORK/memory.txt" "$TARGETS_WORK/targets.md"

# anchors NAME GATEWAY_CMD ANCHORS [VAR=VALUE...]: one run-anchors.sh
# invocation, pinned, one token; its results.tsv is copied to NAME.tsv.
anchors() {
    local name=$1 cmd=$2 list=$3 results
    shift 3
    log "$name: run-anchors.sh, ANCHORS=\"$list\" + mfagate, RUNS=$RUNS DURATION=$DURATION"
    # stdout: the harness's table; stderr: its progress, shown and kept.
    { env MODES=pinned TOKEN_POOL=0 ANCHORS="$list" GATEWAY_CMD="$cmd" "$@" "$BENCH_DIR/run-anchors.sh" \
        2>&1 >"$TARGETS_WORK/$name.md"; } | tee "$TARGETS_WORK/$name.log" >&2 \
        || die "$name: run-anchors.sh failed (see $TARGETS_WORK/$name.log)"
    results=$(sed -n 's/.*results in //p' "$TARGETS_WORK/$name.log" | tail -1)
    [[ -s $results/results.tsv ]] || die "$name: no results.tsv (see $TARGETS_WORK/$name.log)"
    cp "$results/results.tsv" "$TARGETS_WORK/$name.tsv"
    grep -q 'G-gateway' "$TARGETS_WORK/$name.tsv" || log "$name: mfagate was not measured (see $TARGETS_WORK/$name.log)"
}

# The decision log of the last gateway started in a step: it must have been
# written (it is emptied at each start); then emptied, since a step's log
# takes hundreds of MB.
audit_check() { # NAME FILE
    [[ -s $2 ]] || die "$1: mfagate wrote no decision log to $2"
    log "$1: the decision log of the last gateway has $(wc -l <"$2") lines"
    : >"$2"
}

gateway=$(printf '%q' "$here/harness-gateway.sh")
for step in $STEPS; do
    case $step in
        cached)
            audit=$TARGETS_WORK/cached-audit.jsonl
            anchors cached "MFAGATE_BENCH_AUDIT=$(printf '%q' "$audit") $gateway" \
                "A-upstream B-nginx-tls C-haproxy-tls" H2LOAD=1
            audit_check cached "$audit"
            ;;
        uncached)
            audit=$TARGETS_WORK/uncached-audit.jsonl
            anchors uncached \
                "MFAGATE__IDENTITY__TOKEN_CACHE_SIZE=0 MFAGATE_BENCH_AUDIT=$(printf '%q' "$audit") $gateway" \
                "C-haproxy-tls" LAT_DURATION=0 H2LOAD=0 CRYPTO_SPEED=0
            audit_check uncached "$audit"
            ;;
        memory)
            log "memory: benches/memory.sh, IDLE=$IDLE after a ${LOAD_SECONDS} s load"
            PINNED=1 REFERENCES="nginx haproxy" "$here/memory.sh" >"$TARGETS_WORK/memory.txt" \
                || die "memory: benches/memory.sh failed (output in $TARGETS_WORK/memory.txt)"
            sed 's/^/[memory] /' "$TARGETS_WORK/memory.txt" >&2
            [[ -n ${MFAGATE_BENCH_AUDIT:-} ]] || audit_check memory "$LOAD_WORK/audit.jsonl"
            ;;
    esac
done

args=(--bench-dir "$BENCH_DIR" --markdown "$TARGETS_WORK/targets.md")
[[ ! -s $TARGETS_WORK/cached.tsv ]] || args+=(--cached "$TARGETS_WORK/cached.tsv")
[[ ! -s $TARGETS_WORK/uncached.tsv ]] || args+=(--uncached "$TARGETS_WORK/uncached.tsv")
[[ ! -s $TARGETS_WORK/memory.txt ]] || args+=(--memory "$TARGETS_WORK/memory.txt")
echo
rc=0
python3 "$here/targets.py" "${args[@]}" || rc=$?
echo
log "the harness's tables: $TARGETS_WORK/cached.md, $TARGETS_WORK/uncached.md; memory: $TARGETS_WORK/memory.txt"
exit "$rc"
