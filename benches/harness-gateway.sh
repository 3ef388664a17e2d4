#!/usr/bin/env bash
# Starts mfagate (release build) from the variables of a benchmark harness's
# gateway contract, mapped onto MFAGATE__… overrides of benches/gateway.toml:
#
#   GW_LISTEN        address of the TLS listener (127.0.0.1:PORT)
#   GW_TLS_CERT      PEM certificate; GW_TLS_KEY its PKCS#8 key
#   GW_UPSTREAM_URL  http://127.0.0.1:PORT (plain HTTP is accepted to loopback only)
#   GW_JWKS_FILE     the signing keys (JWK Set file)
#   GW_ISSUER        the accepted issuer, exact
#   GW_AUDIENCE      the accepted audience
#   GW_REQUIRED_AMR  the amr value that proves MFA
#   GW_WORKERS       CPUs the gateway may use: its worker threads
#
# Any other MFAGATE__SECTION__KEY in the environment is passed on, e.g.
# MFAGATE__IDENTITY__TOKEN_CACHE_SIZE=0 to verify every token. The decision
# log goes to $MFAGATE_BENCH_AUDIT (default ${TMPDIR:-/tmp}/mfagate-bench-audit.jsonl),
# emptied at each start; the admin listener (/metrics) to $MFAGATE_BENCH_ADMIN
# (default 127.0.0.1:0, an ephemeral port). MFAGATE_BIN selects the binary.
#
#   GATEWAY_CMD="$PWD/benches/harness-gateway.sh" ./run-anchors.sh
#   GATEWAY_CMD="MFAGATE__IDENTITY__TOKEN_CACHE_SIZE=0 $PWD/benches/harness-gateway.sh" ./run-anchors.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${MFAGATE_BIN:-$here/../target/release/mfagate}

for v in GW_LISTEN GW_TLS_CERT GW_TLS_KEY GW_UPSTREAM_URL GW_JWKS_FILE GW_ISSUER GW_AUDIENCE \
    GW_REQUIRED_AMR GW_WORKERS; do
    [[ -n ${!v:-} ]] || { echo "harness-gateway: $v is not set" >&2; exit 2; }
done
# The values go into TOML strings below.
for v in GW_ISSUER GW_AUDIENCE GW_REQUIRED_AMR; do
    [[ ${!v} != *[\"\\]* ]] || { echo "harness-gateway: $v contains a quote or backslash" >&2; exit 2; }
done
[[ -x $bin ]] || { echo "harness-gateway: $bin not found (cargo build --release)" >&2; exit 2; }

audit=${MFAGATE_BENCH_AUDIT:-${TMPDIR:-/tmp}/mfagate-bench-audit.jsonl}
: >"$audit"

export MFAGATE__SERVER__LISTEN=$GW_LISTEN
export MFAGATE__SERVER__ADMIN_LISTEN=${MFAGATE_BENCH_ADMIN:-127.0.0.1:0}
export MFAGATE__SERVER__TLS_CERT=$GW_TLS_CERT
export MFAGATE__SERVER__TLS_KEY=$GW_TLS_KEY
export MFAGATE__SERVER__WORKERS=$GW_WORKERS
export MFAGATE__IDENTITY__JWKS_URI="file:$GW_JWKS_FILE"
export MFAGATE__IDENTITY__ISSUERS="[\"$GW_ISSUER\"]"
export MFAGATE__AUDIT__PATH=$audit
export MFAGATE__ROUTES__0__UPSTREAM=$GW_UPSTREAM_URL
export MFAGATE__ROUTES__0__AUDIENCES="[\"$GW_AUDIENCE\"]"
export MFAGATE__ROUTES__0__ACCEPTED_AMR="[\"$GW_REQUIRED_AMR\"]"
exec "$bin" --config "$here/gateway.toml" run
