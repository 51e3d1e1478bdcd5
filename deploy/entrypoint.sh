#!/bin/sh
# The image's one entrypoint: the first argument names the process, the rest is passed
# on. `exec` replaces this shell, so the process itself is PID 1 and receives SIGTERM
# directly (nameko then stops taking work and lets running workers finish).
set -eu

usage="usage: entrypoint.sh auth|subscriptions|billing|notifications|gateway|migrate|mailsink|portalctl [ARGS...]"
if [ $# -eq 0 ]; then
    echo "$usage" >&2
    exit 64
fi
role=$1
shift

# Commands as in the Procfile; gateway and billing listen on every interface in a container.
serve() {
    exec nameko run --config config.yaml "$@"
}
listen_on_port() {
    WEB_SERVER_ADDRESS="0.0.0.0:${PORT:-$1}"
    export WEB_SERVER_ADDRESS
}

case "$role" in
    auth)
        serve services.auth.service:AuthService "$@" ;;
    subscriptions)
        serve services.subscriptions.service:SubscriptionsService "$@" ;;
    billing)
        listen_on_port 8001
        serve services.billing.service:BillingService "$@" ;;
    notifications)
        serve services.notifications.service:NotificationsService "$@" ;;
    gateway)
        listen_on_port 8000
        serve gateway.service:GatewayService "$@" ;;
    migrate)
        exec portalctl migrate "$@" ;;
    portalctl)
        exec portalctl "$@" ;;
    mailsink)
        # Development only (compose); ports come from SMTP_PORT and MAIL_SINK_PORT.
        exec python -m devtools.mailsink --smtp-host 0.0.0.0 --http-host 0.0.0.0 "$@" ;;
    *)
        echo "entrypoint.sh: unknown process '$role'" >&2
        echo "$usage" >&2
        exit 64 ;;
esac
