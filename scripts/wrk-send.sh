#!/usr/bin/env bash
# The send path's criterion measurement: wrk -t2 -c64 -d10s of authenticated
# `POST /rooms/{id}/messages` (and of direct messages) against a fresh chat-server with its
# rate limits off, at the store's default durability.
#
#   scripts/wrk-send.sh [sqlite|sled|postgres] [seconds]
#
# Needs `wrk` (Debian package `wrk`), `jq`, `curl` and a release build
# (`cargo build --release -p chat-http`); CHAT_SERVER names another binary to measure.
set -euo pipefail
cd "$(dirname "$0")/.."

store=${1:-sqlite}
seconds=${2:-10}
server=${CHAT_SERVER:-target/release/chat-server}
dir=$(mktemp -d)
case $store in
    sqlite) database="sqlite://$dir/chat.db" ;;
    sled) database="sled://$dir/chat.sled" ;;
    postgres)
        schema="wrk_$$"
        database="postgres://postgres@127.0.0.1:5432/test"
        extra=(--postgres-schema "$schema")
        ;;
    *) echo "unknown store $store" >&2; exit 2 ;;
esac

port=$((20000 + RANDOM % 20000))
"$server" --bind "127.0.0.1:$port" --database "$database" "${extra[@]}" --log warn \
    --auth-per-minute 0 --sends-per-second 0 --failed-logins 0 > "$dir/server.log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    if [ "$store" = postgres ]; then
        psql -q -h 127.0.0.1 -U postgres -d test -c "DROP SCHEMA IF EXISTS $schema CASCADE" || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

api="http://127.0.0.1:$port/api/v1"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done

json='content-type: application/json'
token() {
    curl -sf -X POST "$api/auth/register" -H "$json" \
        -d "{\"username\":\"$1\",\"password\":\"$1-password\"}" > /dev/null
    curl -sf -X POST "$api/auth/login" -H "$json" \
        -d "{\"username\":\"$1\",\"password\":\"$1-password\"}" | jq -r .access_token
}
alice=$(token alice)
bob=$(token bob)
bob_id=$(curl -sf "$api/users/me" -H "authorization: Bearer $bob" | jq -r .id)
room=$(curl -sf -X POST "$api/rooms" -H "authorization: Bearer $alice" -H "$json" \
    -d '{"name":"load"}' | jq -r .id)

cat > "$dir/post.lua" << 'EOF'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"body":"a message of a usual length, say sixty characters long"}'
done = function(summary, latency, requests)
    io.write(string.format("non-2xx or failed: %d\n",
        summary.errors.status + summary.errors.connect + summary.errors.read
        + summary.errors.write + summary.errors.timeout))
end
EOF

run() {
    echo "== $store: $1"
    wrk -t2 -c64 -d"${seconds}s" --latency -s "$dir/post.lua" \
        -H "authorization: Bearer $alice" "$2" | grep -E "Requests/sec|^ +(50|99)%|non-2xx"
}
run "room messages" "$api/rooms/$room/messages"
run "direct messages" "$api/direct/$bob_id/messages"
