#!/usr/bin/env bash
# Memory, side by side: mfagate (benches/gateway.toml: enforcement, metrics
# and the decision log to a file), nginx as a plain TLS proxy and HAProxy 2.6
# checking the JWT, each with one worker in front of the same nginx upstream.
# Each in turn serves a load (wrk, LOAD_SECONDS, rotating tokens when
# TOKEN_POOL is set), then holds IDLE keep-alive TLS connections open
# (benches/idle_connections.py, the same client for all three), each after
# one request; the resident memory of the server's process tree (nginx:
# master + worker) is read at each step. Prints "server name value" lines and
# the ratios of the targets:
#
#   ratio mfagate_idle_vs_nginx_idle        at most 0.55
#   ratio mfagate_after_close_vs_before     at most 1.10 (back within 10 %)
#   ratio mfagate_idle_vs_haproxy_idle      for reference
#
#   benches/memory.sh                       # 10,000 connections after a 5 s load, pinned
#   IDLE=2000 LOAD_SECONDS=2 benches/memory.sh
#   REFERENCES="" benches/memory.sh         # mfagate alone, no shared harness needed
#
# nginx and HAProxy run from the shared side-by-side harness's configurations
# ($BENCH_DIR/conf/proxy-nginx.conf.in, haproxy-jwt.cfg.in, rendered with its
# lib.sh), with their connection limits raised for IDLE connections.
# Knobs (environment, defaults in brackets): IDLE [10000], LOAD_SECONDS [5],
# CONNS [64], PINNED [1: load and client on CPU 0, servers on CPU 1],
# REFERENCES ["nginx haproxy"], BENCH_DIR [../shared/bench next to the
# repository], NGINX_HTTP_PORT [18183], NGINX_TLS_PORT [18184],
# HAPROXY_HTTP_PORT [18185], HAPROXY_TLS_PORT [18186], HAPROXY_NOAUTH_PORT
# [18187], and those of load.sh (UPSTREAM_PORT, GATEWAY_PORT, ADMIN_PORT,
# LOAD_WORK, MFAGATE_BIN, TOKEN_POOL, MFAGATE__…). Needs what load.sh needs,
# python3, and haproxy for the HAProxy figure.
set -euo pipefail
IDLE=${IDLE:-10000}
LOAD_SECONDS=${LOAD_SECONDS:-5}
CONNS=${CONNS:-64}
export PINNED=${PINNED:-1}
REFERENCES=${REFERENCES-nginx haproxy}
NGINX_HTTP_PORT=${NGINX_HTTP_PORT:-18183}
NGINX_TLS_PORT=${NGINX_TLS_PORT:-18184}
HAPROXY_HTTP_PORT=${HAPROXY_HTTP_PORT:-18185}
HAPROXY_TLS_PORT=${HAPROXY_TLS_PORT:-18186}
HAPROXY_NOAUTH_PORT=${HAPROXY_NOAUTH_PORT:-18187}
bench_dir=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/../shared/bench}

for ref in $REFERENCES; do
    case $ref in
        nginx) need=(lib.sh conf/proxy-nginx.conf.in) ;;
        haproxy) need=(lib.sh conf/haproxy-jwt.cfg.in)
                 command -v haproxy >/dev/null || { echo "memory: haproxy is not installed" >&2; exit 2; } ;;
        *) echo "memory: unknown reference $ref (nginx, haproxy)" >&2; exit 2 ;;
    esac
    for f in "${need[@]}"; do
        [[ -f $bench_dir/$f ]] || {
            echo "memory: $bench_dir/$f is missing: set BENCH_DIR to the shared bench harness, or REFERENCES=\"\"" >&2
            exit 2
        }
    done
done
if [[ -n $REFERENCES ]]; then
    # render TEMPLATE OUT (@NAME@ placeholders), wait_port PORT PID.
    # shellcheck source=/dev/null
    source "$bench_dir/lib.sh"
fi

# Every server inherits the limit: raise it first.
hard=$(ulimit -Hn)
nofile=$((2 * IDLE + 4096))
[[ $hard == unlimited ]] || ((nofile <= hard)) || nofile=$hard
if ((nofile < IDLE + 2048)) || ! ulimit -n "$nofile" 2>/dev/null; then
    echo "cannot raise the file limit to $((IDLE + 2048)) (ulimit -Hn: $hard)" >&2
    exit 1
fi
# The gateway must accept them all (max_connections is 4096 by default).
export MFAGATE__SERVER__MAX_CONNECTIONS=${MFAGATE__SERVER__MAX_CONNECTIONS:-$((IDLE + 1024))}
# shellcheck source=benches/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

python=$(command -v python3)
results=$LOAD_WORK/memory-results.txt
: >"$results"
failed=0

rss_tree() { # PID: summed VmRSS of PID and its descendants, MiB
    local total=0 p queue=("$1")
    while ((${#queue[@]})); do
        p=${queue[0]} queue=("${queue[@]:1}")
        total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)))
        # shellcheck disable=SC2207  # pids are words
        queue+=($(cat /proc/"$p"/task/*/children 2>/dev/null))
    done
    awk -v k="$total" 'BEGIN { printf "%.1f", k / 1024 }'
}

measure() { # NAME PID PORT: load, then the idle connections
    local name=$1 pid=$2 port=$3 target out
    target=https://127.0.0.1:$port/v1/customers
    echo "$name rss_started_mib $(rss_tree "$pid")" | tee -a "$results"
    out=$LOAD_WORK/memory-$name-load.txt
    "${load_cpus[@]}" timeout $((LOAD_SECONDS + 30)) wrk -t"$threads" -c"$CONNS" -d"${LOAD_SECONDS}s" "${auth[@]}" \
        "$target" >"$out"
    if grep -qE 'Non-2xx|Socket errors' "$out"; then
        log "$name: $(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ')"
        failed=1
    fi
    echo "$name load_requests_per_second $(awk '/^Requests\/sec/ { print $2 }' "$out")" | tee -a "$results"
    "${load_cpus[@]}" "$python" "$here/idle_connections.py" --port "$port" --pid "$pid" -n "$IDLE" \
        --token-file "$LOAD_WORK/tokens/valid.jwt" >"$LOAD_WORK/memory-$name.txt" || failed=1
    sed "s/^/$name /" "$LOAD_WORK/memory-$name.txt" | tee -a "$results"
}

stop() { # PID: a reference server started below
    local pid=$1 keep=() p
    kill -TERM "$pid" 2>/dev/null || true
    for _ in {1..50}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${pids[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    pids=("${keep[@]}")
}

ref_status() { # URL TOKEN
    curl -sk -o /dev/null -w '%{http_code}' --max-time 5 \
        -H "Authorization: Bearer $(<"$LOAD_WORK/tokens/$2.jwt")" "$1" || true
}

log "memory: $IDLE idle connections after a ${LOAD_SECONDS} s load; mfagate${REFERENCES:+, $REFERENCES}"
measure mfagate "$gateway_pid" "$GATEWAY_PORT"

# The variables the shared configurations name (@NAME@).
# shellcheck disable=SC2034
PROXY_WORKERS=1 RUN_DIR=$LOAD_WORK/references TLS_DIR=$LOAD_WORK JWT_DIR=$LOAD_WORK/references/jwt REQUIRED_AMR=mfa
if [[ -n $REFERENCES ]]; then
    mkdir -p "$RUN_DIR/nginx-tmp" "$JWT_DIR/keys"
    openssl pkey -in "$key" -pubout -out "$JWT_DIR/keys/public.pem" 2>/dev/null
    cat "$LOAD_WORK/server.crt" "$LOAD_WORK/server.key" >"$LOAD_WORK/server.pem"
fi
for ref in $REFERENCES; do
    case $ref in
        nginx)
            ports=("$NGINX_HTTP_PORT" "$NGINX_TLS_PORT") port=$NGINX_TLS_PORT
            conf=$RUN_DIR/proxy-nginx.conf
            render "$bench_dir/conf/proxy-nginx.conf.in" "$conf"
            sed -i -e "s/^worker_rlimit_nofile [0-9]*;/worker_rlimit_nofile $nofile;/" \
                -e "s/worker_connections [0-9]*;/worker_connections $((IDLE + 1024));/" "$conf"
            if ! grep -q "worker_connections $((IDLE + 1024));" "$conf" \
                || ! grep -q "worker_rlimit_nofile $nofile;" "$conf"; then
                die "$conf: no worker_connections / worker_rlimit_nofile to raise"
            fi
            cmd=(nginx -p "$RUN_DIR/" -c "$conf")
            ;;
        haproxy)
            ports=("$HAPROXY_HTTP_PORT" "$HAPROXY_TLS_PORT" "$HAPROXY_NOAUTH_PORT") port=$HAPROXY_TLS_PORT
            conf=$RUN_DIR/haproxy-jwt.cfg
            render "$bench_dir/conf/haproxy-jwt.cfg.in" "$conf"
            # HAProxy wants room for two descriptors per connection and, by
            # default, refuses to start without it; idle client connections
            # share pooled upstream ones, so the limit raised above does.
            sed -i -e "s/^\([[:space:]]*maxconn\) [0-9]*.*/\1 $((IDLE + 1024))\n    no strict-limits/" "$conf"
            grep -Eq "^[[:space:]]*maxconn $((IDLE + 1024))" "$conf" || die "$conf: no global maxconn to raise"
            haproxy -q -c -f "$conf" >/dev/null || die "$conf: invalid"
            cmd=(haproxy -db -f "$conf")
            ;;
    esac
    for p in "${ports[@]}"; do
        if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use"; fi
    done
    "${server_cpus[@]}" "${cmd[@]}" >"$RUN_DIR/$ref.log" 2>&1 </dev/null &
    ref_pid=$!
    pids+=("$ref_pid")
    for p in "${ports[@]}"; do
        wait_port "$p" "$ref_pid" || { tail -20 "$RUN_DIR/$ref.log" >&2; die "$ref did not start"; }
    done
    [[ $(ref_status "https://127.0.0.1:$port/v1/customers" valid) == 200 ]] || die "$ref: valid token not answered 200"
    if [[ $ref == haproxy ]]; then
        [[ $(ref_status "https://127.0.0.1:$port/v1/customers" nomfa) == 401 ]] \
            || die "$ref: token without MFA not answered 401"
    fi
    measure "$ref" "$ref_pid" "$port"
    stop "$ref_pid"
done

awk '
    { v[$1 " " $2] = $3 }
    function ratio(name, a, b) { if (v[a] != "" && v[b] > 0) printf "ratio %s %.2f\n", name, v[a] / v[b] }
    END {
        ratio("mfagate_idle_vs_nginx_idle", "mfagate rss_idle_mib", "nginx rss_idle_mib")
        ratio("mfagate_after_close_vs_before", "mfagate rss_after_close_mib", "mfagate rss_before_mib")
        ratio("mfagate_idle_vs_haproxy_idle", "mfagate rss_idle_mib", "haproxy rss_idle_mib")
    }' "$results" | tee -a "$results"
((failed == 0)) || die "some connections or requests failed (see $LOAD_WORK/memory-*.txt)"
