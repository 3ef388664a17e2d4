# Sourced by the load scripts of benches/: installs what is missing, mints an
# RSA signing key, its JWK Set and Entra-v1-shaped tokens with openssl,
# starts an nginx upstream answering 200 and mfagate (benches/harness-gateway.sh)
# on 127.0.0.1, checks that the gateway accepts the valid token and refuses
# one without MFA, and stops both on exit. Knobs: see load.sh.
# Provides: $url, $gateway_pid, $upstream_pid, $auth (wrk arguments), $threads,
# $load_cpus (taskset prefix), $LOAD_WORK/tokens/*.jwt, ticks PID, log, die.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
PINNED=${PINNED:-0}
TOKEN_POOL=${TOKEN_POOL:-0}
UPSTREAM_PORT=${UPSTREAM_PORT:-18180}
GATEWAY_PORT=${GATEWAY_PORT:-18190}
ADMIN_PORT=${ADMIN_PORT:-18191}
REDIS_PORT=${REDIS_PORT:-18192}
STORE=${STORE:-}
LOAD_WORK=${LOAD_WORK:-/tmp/mfagate-load}
export MFAGATE_BIN=${MFAGATE_BIN:-$root/target/release/mfagate}

log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }

# ------------------------------------------------------------- tools --
declare -A PKG_OF=([wrk]=wrk [h2load]=nghttp2-client [nginx]=nginx-light [openssl]=openssl [curl]=curl
    [xxd]=xxd [taskset]=util-linux)
[[ $STORE != redis ]] || PKG_OF[redis-server]=redis-server
missing=()
for cmd in "${!PKG_OF[@]}"; do command -v "$cmd" >/dev/null || missing+=("${PKG_OF[$cmd]}"); done
if ((${#missing[@]})); then
    [[ $EUID -eq 0 ]] || die "missing ${missing[*]}: install them or run as root"
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ ! -x $MFAGATE_BIN ]]; then
    log "building mfagate (release)"
    (cd "$root" && cargo build --release --bin mfagate)
fi

for p in "$UPSTREAM_PORT" "$GATEWAY_PORT" "$ADMIN_PORT" ${STORE:+"$REDIS_PORT"}; do
    if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use"; fi
done

# ----------------------------------------------- keys, tokens, certs --
mkdir -p "$LOAD_WORK/tokens" "$LOAD_WORK/nginx"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
key=$LOAD_WORK/signing.key
[[ -s $key ]] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key" 2>/dev/null
n=$(openssl rsa -in "$key" -noout -modulus 2>/dev/null | sed 's/^Modulus=//' | xxd -r -p | b64url)
kid=bench-rs256
printf '{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"%s","x5t":"%s","n":"%s","e":"AQAB"}]}\n' \
    "$kid" "$kid" "$n" >"$LOAD_WORK/jwks.json"

TID=6707d272-c9c1-55e5-afbc-60e5c6c45248
ISSUER="https://sts.windows.net/$TID/"
AUDIENCE=https://api.partnercenter.microsoft.com
# An Entra v1 delegated token of the usual size (about 1.5 KB).
mint() { # AMR_JSON SERIAL
    local now header payload body
    now=$(date +%s)
    header=$(printf '{"alg":"RS256","kid":"%s","typ":"JWT","x5t":"%s"}' "$kid" "$kid" | b64url)
    body=$(printf '{"aud":"%s","iss":"%s","iat":%d,"nbf":%d,"exp":%d,"acr":"1","aio":"%s","amr":%s,' \
        "$AUDIENCE" "$ISSUER" "$now" "$now" $((now + 7200)) "$(head -c 60 /dev/urandom | b64url)" "$1")
    body+=$(printf '"appid":"1950a258-227b-4e31-a9cf-717495945fc2","appidacr":"2","family_name":"Bench",' )
    body+=$(printf '"given_name":"Load","ipaddr":"192.0.2.10","name":"Load Bench",')
    body+=$(printf '"oid":"0d8e4c1a-9f3b-4c2e-8a7d-%012d","puid":"10032001A2B3C4D5",' "$2")
    body+=$(printf '"rh":"%s","scp":"user_impersonation",' "$(head -c 30 /dev/urandom | b64url)")
    body+=$(printf '"sub":"%s","tid":"%s","unique_name":"load%d@contoso.onmicrosoft.com",' \
        "$(head -c 32 /dev/urandom | b64url)" "$TID" "$2")
    body+=$(printf '"upn":"load%d@contoso.onmicrosoft.com","uti":"%s","ver":"1.0",' "$2" \
        "$(head -c 16 /dev/urandom | b64url)")
    body+=$(printf '"wids":["b79fbf4d-3ef9-4689-8143-76b194e85509"],"xms_tcdt":1600000000}')
    payload=$(printf '%s' "$body" | b64url)
    printf '%s.%s.%s\n' "$header" "$payload" \
        "$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$key" -binary | b64url)"
}
mint '["pwd","mfa"]' 0 >"$LOAD_WORK/tokens/valid.jwt"
mint '["pwd"]' 0 >"$LOAD_WORK/tokens/nomfa.jwt"
if ((TOKEN_POOL > 0)); then
    if (($(wc -l <"$LOAD_WORK/tokens/pool.txt" 2>/dev/null || echo 0) != TOKEN_POOL)) \
        || [[ -n $(find "$LOAD_WORK/tokens/pool.txt" -mmin +60) ]]; then
        log "minting $TOKEN_POOL tokens"
        for ((i = 1; i <= TOKEN_POOL; i++)); do mint '["pwd","mfa"]' "$i"; done >"$LOAD_WORK/tokens/pool.txt"
    fi
fi
if [[ ! -s $LOAD_WORK/server.crt ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$LOAD_WORK/server.key" -out "$LOAD_WORK/server.crt" 2>/dev/null
fi

# ---------------------------------------------------------- processes --
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in {1..50}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server_cpus=() load_cpus=() threads=$(nproc) workers=$(nproc)
if [[ $PINNED == 1 ]]; then
    server_cpus=(taskset -c 1) load_cpus=(taskset -c 0) threads=1 workers=1
fi

cat >"$LOAD_WORK/nginx/upstream.conf" <<EOF
worker_processes $workers;
daemon off;
pid $LOAD_WORK/nginx/upstream.pid;
error_log $LOAD_WORK/nginx/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 1000000000;
    client_body_temp_path $LOAD_WORK/nginx/body;
    proxy_temp_path $LOAD_WORK/nginx/proxy;
    fastcgi_temp_path $LOAD_WORK/nginx/fastcgi;
    uwsgi_temp_path $LOAD_WORK/nginx/uwsgi;
    scgi_temp_path $LOAD_WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT backlog=4096;
        default_type application/json;
        location / { return 200 '{"status":"ok"}\n'; }
    }
}
EOF
"${server_cpus[@]}" nginx -p "$LOAD_WORK/nginx/" -c "$LOAD_WORK/nginx/upstream.conf" \
    >"$LOAD_WORK/nginx/stdout.log" 2>&1 &
upstream_pid=$!
pids+=("$upstream_pid")

# STORE=local or redis: a per-oid route limit that never refuses (a million
# a second), its buckets in this process or in a redis-server of its own.
store_pid=""
case $STORE in
    "") ;;
    local | redis)
        export MFAGATE__ROUTES__0__RATE_LIMITS='[{ key = "oid", requests = 1000000, per = "1s" }]'
        export MFAGATE__LIMITS__STORE=$STORE
        ;;
    *) die "STORE is local or redis" ;;
esac
if [[ $STORE == redis ]]; then
    mkdir -p "$LOAD_WORK/redis"
    "${server_cpus[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$LOAD_WORK/redis" --loglevel warning >"$LOAD_WORK/redis/redis.log" 2>&1 &
    store_pid=$!
    pids+=("$store_pid")
    export MFAGATE__LIMITS__REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
    export MFAGATE__LIMITS__STORE_TIMEOUT=${MFAGATE__LIMITS__STORE_TIMEOUT:-50ms}
    for _ in {1..50}; do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

GW_LISTEN=127.0.0.1:$GATEWAY_PORT GW_TLS_CERT=$LOAD_WORK/server.crt GW_TLS_KEY=$LOAD_WORK/server.key \
    GW_UPSTREAM_URL=http://127.0.0.1:$UPSTREAM_PORT GW_JWKS_FILE=$LOAD_WORK/jwks.json GW_ISSUER=$ISSUER \
    GW_AUDIENCE=$AUDIENCE GW_REQUIRED_AMR=mfa GW_WORKERS=$workers \
    MFAGATE_BENCH_ADMIN=127.0.0.1:$ADMIN_PORT MFAGATE_BENCH_AUDIT=${MFAGATE_BENCH_AUDIT:-$LOAD_WORK/audit.jsonl} \
    "${server_cpus[@]}" "$here/harness-gateway.sh" >"$LOAD_WORK/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")

url=https://127.0.0.1:$GATEWAY_PORT/v1/customers
for _ in {1..100}; do
    curl -s -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz" && break
    kill -0 "$gateway_pid" 2>/dev/null || { tail -20 "$LOAD_WORK/gateway.log" >&2; die "gateway exited"; }
    sleep 0.1
done
status() { curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(<"$LOAD_WORK/tokens/$1.jwt")" "$url"; }
[[ $(status valid) == 200 ]] || { tail -20 "$LOAD_WORK/gateway.log" >&2; die "valid token not answered 200"; }
[[ $(status nomfa) == 401 ]] || die "token without MFA not answered 401"
if [[ $STORE == redis ]]; then
    up=$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '$1 == "mfagate_rate_limit_store_up" { print $2 }')
    [[ $up == 1 ]] || die "the rate-limit store is not up"
    [[ $(redis-cli -p "$REDIS_PORT" dbsize) -ge 1 ]] || die "nothing was counted in redis"
fi


auth=(-H "Authorization: Bearer $(<"$LOAD_WORK/tokens/valid.jwt")")
if ((TOKEN_POOL > 0)); then
    export LOAD_TOKENS=$LOAD_WORK/tokens/pool.txt
    auth=(-s "$here/token-pool.lua")
fi
ticks() { # PID: user + system clock ticks of the process, its threads and its children (nginx workers)
    local total=0 p
    for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo "$total"
}
hz=$(getconf CLK_TCK)
