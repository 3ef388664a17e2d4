#!/usr/bin/env bash
# Installs the client libraries that tests/clients.rs drives through the
# gateway, pinned: Microsoft's Python SDKs (tests/py/clients-requirements.txt)
# into target/py-venv ($MFAGATE_TEST_PYTHON's venv is left alone), and undici
# (tests/node/package-lock.json) into target/node-clients
# ($MFAGATE_NODE_CLIENTS). Needs python3 with venv, and node and npm.
# Run from anywhere; does nothing when both are already installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

install_client_libraries() {
    local venv=target/py-venv
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    # `python -m pip`, not `bin/pip`: a venv copied from elsewhere keeps its
    # old path in pip's first line.
    if ! cmp -s tests/py/clients-requirements.txt "$venv/clients-requirements.txt"; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/py/clients-requirements.txt
        cp tests/py/clients-requirements.txt "$venv/clients-requirements.txt"
    fi
    local npm_dir="${MFAGATE_NODE_CLIENTS:-$PWD/target/node-clients}"
    mkdir -p "$npm_dir"
    if ! cmp -s tests/node/package-lock.json "$npm_dir/package-lock.json"; then
        cp tests/node/package.json tests/node/package-lock.json "$npm_dir/"
        (cd "$npm_dir" && npm ci --silent --no-audit --no-fund)
    fi
}

install_client_libraries
