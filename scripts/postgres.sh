#!/usr/bin/env bash
# Makes sure the PostgreSQL at URL answers: starts this machine's cluster if it is down, then
# waits up to 30 s. Exits non-zero if it still does not answer.
set -euo pipefail
url="${1:-postgres://postgres@127.0.0.1:5432/test}"

answers() { pg_isready -q -d "$url" 2>/dev/null; }

if ! answers; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        echo "postgres: not answering at $url; starting the local cluster"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
    for _ in $(seq 1 30); do
        answers && break
        sleep 1
    done
fi
if ! answers; then
    echo "postgres: nothing answers at $url" >&2
    exit 1
fi
echo "postgres: answering at $url"
