#!/usr/bin/env bash
# Prepare a fresh clone: the virtual environment (from the lock file) and a RabbitMQ
# that answers at AMQP_URI. `--for-tests` also enables the management plugin that
# nameko's pytest fixtures use to give every test its own virtual host.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.installed-from-lock

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating the virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ requirements.lock -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    echo "==> installing pinned dependencies (requirements.lock)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.lock
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
    touch "$STAMP"
fi

AMQP_URI=${AMQP_URI:-amqp://guest:guest@localhost:5672/}
broker_answers() {
    "$VENV/bin/python" - "$AMQP_URI" <<'PY'
import socket, sys
from urllib.parse import urlparse
uri = urlparse(sys.argv[1])
try:
    socket.create_connection((uri.hostname or "localhost", uri.port or 5672), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

wait_for_broker() {
    for _ in $(seq 1 60); do
        broker_answers && return 0
        sleep 1
    done
    return 1
}

# RabbitMQ's server on this machine (Debian's package when run as root), or exit
# saying what to install; $1 says why it is needed.
ensure_rabbitmq_installed() {
    command -v rabbitmq-server >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing RabbitMQ (Debian package rabbitmq-server)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server
        return 0
    fi
    echo "$1" >&2
    echo "Install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server; macOS: brew install rabbitmq)." >&2
    exit 1
}

if ! broker_answers; then
    ensure_rabbitmq_installed "RabbitMQ does not answer at $AMQP_URI and is not installed (or set AMQP_URI to a running broker)."
    echo "==> starting the local RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    if ! wait_for_broker; then
        echo "RabbitMQ was started but does not answer at $AMQP_URI after 60 s." >&2
        exit 1
    fi
fi

if [ "${1:-}" = "--for-tests" ]; then
    # The fault suite starts a RabbitMQ node of its own, whatever broker AMQP_URI names.
    ensure_rabbitmq_installed "The fault suite (make test-faults) starts its own RabbitMQ node: rabbitmq-server is not installed."
    if ! curl -fsS -u guest:guest http://localhost:15672/api/overview >/dev/null 2>&1; then
        echo "==> enabling rabbitmq_management (nameko's test fixtures use its API)"
        rabbitmq-plugins enable rabbitmq_management >/dev/null
        for _ in $(seq 1 60); do
            curl -fsS -u guest:guest http://localhost:15672/api/overview >/dev/null 2>&1 && break
            sleep 1
        done
    fi

    # The browser tests (tests/browser) drive Debian's chromium through Playwright;
    # Playwright's own browser download is not used.
    if [ ! -x /usr/bin/chromium ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "==> installing Chromium (Debian package chromium) for the browser tests"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
        else
            echo "The browser tests need /usr/bin/chromium (Debian/Ubuntu: sudo apt-get install chromium)." >&2
            exit 1
        fi
    fi
fi
