#!/usr/bin/env bash
# Makes sure the NATS server at URL answers: starts this machine's nats-server (JetStream on,
# as the machine runs it) if it is down, then waits up to 30 s. Exits non-zero if it still
# does not answer.
set -euo pipefail
url="${1:-nats://127.0.0.1:4222}"
address="${url#nats://}"
host="${address%:*}"
port="${address##*:}"

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

if ! answers; then
    if command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; then
        echo "nats: not answering at $url; starting nats-server"
        mkdir -p /var/lib/nats-server
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
            -a "$host" -p "$port" -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
    fi
    for _ in $(seq 1 30); do
        answers && break
        sleep 1
    done
fi
if ! answers; then
    echo "nats: nothing answers at $url" >&2
    exit 1
fi
echo "nats: answering at $url"
