#!/usr/bin/env bash
# The web client's tests in a real browser: Debian's Chromium (installed with apt if missing;
# no browser is ever downloaded), driven by Playwright for Python from a venv under target/.
# Screenshots land in target/screenshots/.
# Usage: scripts/browser-tests.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

chromium=${CHAT_CHROMIUM:-/usr/bin/chromium}
# The emoji font only makes the screenshots readable.
if [ ! -x "$chromium" ] || [ ! -d /usr/share/fonts/truetype/noto ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji > /dev/null
fi
"$chromium" --version

venv=target/browser-venv
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c 'import playwright' 2> /dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet playwright pytest
fi

cargo build --quiet -p chat-http --bin chat-server
export CHAT_SERVER="$PWD/target/debug/chat-server" CHAT_CHROMIUM="$chromium"
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/pytest" chat-http/tests/browser -p no:cacheprovider "$@"
