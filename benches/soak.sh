#!/usr/bin/env bash
# Soak: ten minutes of mixed traffic through the release build, HTTP/2 and
# HTTP/1.1, allowed (forwarded to a TLS upstream) and denied (401 after the
# signature check, and malformed tokens). Passes when no request fails (every
# allowed request 2xx, every denied one 4xx, nothing 5xx, no client errors)
# and the gateway's RSS at the end is within 10 % of its RSS after warm-up.
#
# Needs: h2load (apt-get install nghttp2-client), openssl, the Python venv
# `cargo test` makes (target/py-venv with tests/py/requirements.txt).
# Usage: benches/soak.sh [SECONDS (default 600)] [WARMUP_SECONDS (default 60)]
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-600}
WARMUP=${2:-60}
RATE=${SOAK_RATE:-25}   # requests per second per h2load client (14 clients)
PY=${MFAGATE_TEST_PYTHON:-target/py-venv/bin/python}
for program in h2load openssl curl; do
    command -v "$program" >/dev/null || { echo "soak: $program is missing" >&2; exit 2; }
done
[ -x "$PY" ] || { echo "soak: $PY is missing (cargo test makes it)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release --quiet

# A test CA, a leaf for the upstream and one for the gateway.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" \
    -days 2 -subj "/CN=soak CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
printf "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n" > "$work/leaf.ext"
for leaf in upstream gateway; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/$leaf.key" -out "$work/$leaf.csr" \
        -subj "/CN=localhost" 2>/dev/null
    openssl x509 -req -in "$work/$leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
        -out "$work/$leaf.pem" -days 2 -extfile "$work/leaf.ext" 2>/dev/null
done

"$PY" tests/py/soak_peers.py "$work/upstream.pem" "$work/upstream.key" "$work/peers.json" &
pids+=($!)
for _ in $(seq 100); do [ -f "$work/peers.json" ] && break; sleep 0.1; done
peer() { "$PY" -c "import json,sys; print(json.load(open('$work/peers.json'))['$1'])"; }

port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
listen=$(port)
admin=$(port)
cat > "$work/soak.toml" <<TOML
[server]
listen = "127.0.0.1:$listen"
admin_listen = "127.0.0.1:$admin"
tls_cert = "$work/gateway.pem"
tls_key = "$work/gateway.key"
drain_delay = "0s"

[identity]
jwks_uri = "$(peer jwks_url)"

[limits]
# All traffic comes from 127.0.0.1: the per-address budget of denied
# requests would block the allowed traffic too.
denied_per_ip = { requests = 0, per = "1s" }

[log]
level = "warn"

[[routes]]
name = "partner-center"
upstream = "$(peer upstream)"
upstream_ca = "$work/ca.pem"
audiences = ["https://api.partnercenter.microsoft.com"]
TOML
target/release/mfagate run --config "$work/soak.toml" 2> "$work/gateway.log" &
gateway=$!
pids+=($gateway)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null || { echo "soak: the gateway did not get ready" >&2; cat "$work/gateway.log" >&2; exit 1; }

url="https://127.0.0.1:$listen/v1/customers?size=10"
rss() { awk '/VmRSS/ {print $2}' "/proc/$gateway/status"; }
# One h2load per kind of traffic: name, h2load options, token, expected status class.
traffic() {
    local seconds=$1 tag=$2
    h2load -D "$seconds" -c 4 -m 4 --rps "$RATE" -H "authorization: Bearer $(peer allowed)" "$url" > "$work/$tag-allowed-h2.txt" &
    local a=$!
    h2load -D "$seconds" -c 4 --h1 --rps "$RATE" -H "authorization: Bearer $(peer allowed)" "$url" > "$work/$tag-allowed-h1.txt" &
    local b=$!
    h2load -D "$seconds" -c 4 -m 4 --rps "$RATE" -H "authorization: Bearer $(peer denied)" "$url" > "$work/$tag-denied-h2.txt" &
    local c=$!
    h2load -D "$seconds" -c 2 --h1 --rps "$RATE" -H "authorization: Bearer $(peer malformed)" "$url" > "$work/$tag-malformed-h1.txt" &
    local d=$!
    wait $a $b $c $d
}
# Checks one h2load report: no errored or timed-out request, and every answer
# in the expected status class (h2load counts 4xx answers as "failed").
check() {
    local file=$1 want=$2
    local requests codes done errored timeout c2 c3 c4 c5
    requests=$(grep '^requests:' "$file")
    codes=$(grep '^status codes:' "$file")
    done=$(sed -E 's/.* ([0-9]+) done.*/\1/' <<<"$requests")
    errored=$(sed -E 's/.* ([0-9]+) errored.*/\1/' <<<"$requests")
    timeout=$(sed -E 's/.* ([0-9]+) timeout.*/\1/' <<<"$requests")
    read -r c2 c3 c4 c5 < <(sed -E 's/status codes: ([0-9]+) 2xx, ([0-9]+) 3xx, ([0-9]+) 4xx, ([0-9]+) 5xx/\1 \2 \3 \4/' <<<"$codes")
    echo "  $(basename "$file" .txt): $done done; 2xx $c2, 3xx $c3, 4xx $c4, 5xx $c5; errored $errored, timeout $timeout"
    [ "$errored" = 0 ] && [ "$timeout" = 0 ] && [ "$c3" = 0 ] && [ "$c5" = 0 ] || return 1
    case $want in
        2xx) [ "$c2" -gt 0 ] && [ "$c4" = 0 ] ;;
        4xx) [ "$c4" -gt 0 ] && [ "$c2" = 0 ] ;;
    esac
}

echo "soak: warming up for ${WARMUP}s"
traffic "$WARMUP" warmup
rss_start=$(rss)
echo "soak: RSS after warm-up ${rss_start} KiB; running for ${DURATION}s"
traffic "$DURATION" soak
rss_end=$(rss)
kill -0 "$gateway" || { echo "soak: the gateway died" >&2; exit 1; }

ok=1
echo "soak: results"
for tag in warmup soak; do
    check "$work/$tag-allowed-h2.txt" 2xx || ok=0
    check "$work/$tag-allowed-h1.txt" 2xx || ok=0
    check "$work/$tag-denied-h2.txt" 4xx || ok=0
    check "$work/$tag-malformed-h1.txt" 4xx || ok=0
done
growth=$(( (rss_end - rss_start) * 1000 / rss_start ))
echo "soak: RSS ${rss_start} KiB after warm-up, ${rss_end} KiB at the end (change $((growth / 10)).$((growth < 0 ? -growth % 10 : growth % 10)) %)"
curl -s "http://127.0.0.1:$admin/metrics" | grep -E '^mfagate_(requests_total\{|upstream_errors_total|open_connections|in_flight)' | grep -v ' 0$' || true
if grep -qi '"level":"ERROR"\| ERROR ' "$work/gateway.log"; then
    echo "soak: the gateway logged errors:" >&2
    grep -i 'error' "$work/gateway.log" | head >&2
    ok=0
fi
[ "${growth#-}" -le 100 ] || { echo "soak: RSS changed by more than 10 %" >&2; ok=0; }
[ "$ok" = 1 ] && echo "soak: PASS" || { echo "soak: FAIL" >&2; exit 1; }
