"""`portalctl`: operate the portal from a shell (migrations, demo data, ...)."""
import argparse
import sys

from services.common import migrations
from services.common.config import load_config
from services.common.errors import PortalError


def cluster_rpc(config):
    """A standalone RPC client with the same deadline as the services' own calls."""
    from services.common.rpc import ClusterRpcProxy

    return ClusterRpcProxy(config, timeout=float(config.get("RPC_TIMEOUT", 5)))


def migrate(args):
    for service in args.service or migrations.SERVICES_WITH_DATABASE:
        migrations.upgrade(service)
        print(f"{service}: database at the newest revision")


def demo(args):
    from portalctl.demo import load_demo

    config = load_config()
    with cluster_rpc(config) as rpc:
        summary = load_demo(rpc, config["PORTAL_BASE_URL"])
    print(f"demo data loaded: {summary}")


def events_tail(args):
    from portalctl import events

    events.tail(load_config()["AMQP_URI"], args.type, print, count=args.count, idle_seconds=args.idle_seconds)


def events_review(args):
    from portalctl import events

    queue, destination = {
        "dead-letters": (events.DEAD_LETTERS, events.dead_letter_destination),
        "unrouted": (events.UNROUTED, events.unrouted_destination),
    }[args.command_name]
    moved = events.review(load_config()["AMQP_URI"], queue, destination, print, args.type, args.send_back)
    if args.send_back:
        print(f"{moved} message(s) sent back")


def new_migration(args):
    migrations.new_revision(args.service, args.message)


def create_api_key(args):
    with cluster_rpc(load_config()) as rpc:
        created = rpc.auth.create_api_key(args.merchant)
    print(f"API key for {created['merchant_id']} (shown only now; keep it secret):")
    print(created["key"])
    print(f"prefix: {created['prefix']}  (to revoke: portalctl api-keys revoke {created['prefix']})")


def revoke_api_key(args):
    with cluster_rpc(load_config()) as rpc:
        revoked = rpc.auth.revoke_api_key(args.prefix)
    print(f"revoked {revoked['prefix']} of {revoked['merchant_id']} at {revoked['revoked_at']}")


def list_api_keys(args):
    with cluster_rpc(load_config()) as rpc:
        keys = rpc.auth.list_api_keys(args.merchant)
    for key in keys:
        state = f"revoked {key['revoked_at']}" if key["revoked_at"] else "active"
        print(f"{key['prefix']}  {key['merchant_id']}  created {key['created_at']}  {state}")


def mail_list(args):
    with cluster_rpc(load_config()) as rpc:
        rows = rpc.notifications.list_outbox(status=args.status, limit=args.limit)
    for row in rows:
        problem = f"  {row['last_error']}" if row["last_error"] else ""
        print(f"{row['id']}  {row['status']:<8} {row['kind']:<24} {row['recipient']}  "
              f"attempts={row['attempts']}  {row['created_at']}{problem}")


def mail_retry(args):
    with cluster_rpc(load_config()) as rpc:
        row = rpc.notifications.retry(args.id)
    print(f"{row['id']} queued again for {row['recipient']} ({row['kind']})")


def webhook_deliveries(args):
    with cluster_rpc(load_config()) as rpc:
        deliveries = rpc.notifications.list_webhook_deliveries(merchant_id=args.merchant, limit=args.limit)
    for delivery in deliveries:
        print(f"{delivery['id']}  {delivery['status']:<10} {delivery['event_type']:<36} "
              f"{delivery['merchant_id']}  {delivery['url']}  attempts={delivery['attempts']}")
        for attempt in delivery["log"]:
            print(f"    {attempt['at']}  {attempt['status_code'] or '-'}  {attempt['error'] or 'ok'}")


def webhook_replay(args):
    with cluster_rpc(load_config()) as rpc:
        delivery = rpc.notifications.replay_webhook(args.id)
    print(f"{delivery['id']} ({delivery['event_type']}) will be delivered again to {delivery['url']}")


def payments_not_applied(args):
    with cluster_rpc(load_config()) as rpc:
        payments = rpc.subscriptions.payments_not_applied(merchant_id=args.merchant, limit=args.limit)
    for payment in payments:
        print(f"{payment['at']}  {payment['order_code']}  {payment['amount_cents']} cents  {payment['kind']:<11} "
              f"{payment['merchant_id']}  subscription {payment['subscription_id']}  {payment['email']}")


# -- onboarding: merchants and their offers (subscriptions' catalog)

PAYMENT_METHODS = ("credit_card", "boleto", "pix")


def _merchant_line(merchant):
    return f"{merchant['id']}  {merchant['name']}  methods {','.join(merchant['payment_methods_allowed'])}"


def _offer_line(offer):
    return (f"{offer['id']}  {offer['status']:<8} {offer['product_name']} / {offer['plan_name']}  "
            f"{offer['price_cents']} cents every {offer['periodicity_months']} month(s)  "
            f"up to {offer['max_installments']}x  {','.join(offer['payment_methods_accepted'])}")


def _next_page(next_cursor):
    if next_cursor:
        print(f"more: --cursor {next_cursor}")


def create_merchant(args):
    merchant = {"id": args.id, "name": args.name}
    if args.payment_method:
        merchant["payment_methods_allowed"] = args.payment_method
    with cluster_rpc(load_config()) as rpc:
        print(f"created {_merchant_line(rpc.subscriptions.create_merchant(merchant))}")


def list_merchants(args):
    with cluster_rpc(load_config()) as rpc:
        page = rpc.subscriptions.list_merchants(cursor=args.cursor, limit=args.limit)
    for merchant in page["merchants"]:
        print(_merchant_line(merchant))
    _next_page(page["next_cursor"])


def show_merchant(args):
    with cluster_rpc(load_config()) as rpc:
        merchant = rpc.subscriptions.get_merchant(args.id)
    for key, value in merchant.items():
        print(f"{key}: {value}")


def _offer_terms(args):
    """The terms given on the command line (those left out are not sent)."""
    terms = {
        "product_name": args.product, "plan_name": args.plan, "price_cents": args.price_cents,
        "periodicity_months": args.periodicity_months, "max_installments": args.max_installments,
        "payment_methods_accepted": args.accept, "status": args.status,
    }
    return {key: value for key, value in terms.items() if value is not None}


def create_offer(args):
    with cluster_rpc(load_config()) as rpc:
        offer = rpc.subscriptions.create_offer(args.merchant, {"id": args.id, **_offer_terms(args)}, actor="operator")
    print(f"created {_offer_line(offer)}")


def update_offer(args):
    with cluster_rpc(load_config()) as rpc:
        offer = rpc.subscriptions.update_offer(args.merchant, args.id, _offer_terms(args), actor="operator")
    print(f"updated {_offer_line(offer)}")


def list_offers(args):
    with cluster_rpc(load_config()) as rpc:
        page = rpc.subscriptions.list_offers(args.merchant, cursor=args.cursor, limit=args.limit, status=args.status)
    for offer in page["offers"]:
        print(_offer_line(offer))
    _next_page(page["next_cursor"])


def _page_options(parser):
    parser.add_argument("--cursor", help="the cursor a page before printed (more: --cursor …)")
    parser.add_argument("--limit", type=int, default=50)


def _offer_options(parser, creating):
    parser.add_argument("--merchant", required=True, help="the merchant's id, e.g. acme-cursos")
    parser.add_argument("id", help="the offer's id, unique in the merchant, e.g. mensal")
    parser.add_argument("--product", required=creating, help="the product's name")
    parser.add_argument("--plan", required=creating, help="the plan's name")
    parser.add_argument("--price-cents", type=int, required=creating, help="the price per cycle, in cents")
    parser.add_argument("--periodicity-months", type=int, required=creating, choices=(1, 2, 3, 6, 12))
    parser.add_argument("--max-installments", type=int, help="installments a card may split a cycle into")
    parser.add_argument("--accept", action="append", choices=PAYMENT_METHODS,
                        help="a payment method the offer accepts, among the merchant's (repeat for more)")
    parser.add_argument("--status", choices=("active", "archived"))


def add_catalog_commands(commands):
    merchants_parser = commands.add_parser("merchants", help="onboard merchants and look them up")
    merchant_commands = merchants_parser.add_subparsers(dest="merchant_command", required=True)
    create_merchant_parser = merchant_commands.add_parser("create", help="a new merchant (then: api-keys create)")
    create_merchant_parser.add_argument("--id", required=True, help="lower-case letters, digits, dashes")
    create_merchant_parser.add_argument("--name", required=True)
    create_merchant_parser.add_argument("--payment-method", action="append", choices=PAYMENT_METHODS,
                                        help="a method its buyers may pay with (repeat; default credit_card)")
    create_merchant_parser.set_defaults(handler=create_merchant)
    list_merchants_parser = merchant_commands.add_parser("list", help="merchants by id, a page at a time")
    _page_options(list_merchants_parser)
    list_merchants_parser.set_defaults(handler=list_merchants)
    show_merchant_parser = merchant_commands.add_parser("show", help="a merchant's profile and settings")
    show_merchant_parser.add_argument("id")
    show_merchant_parser.set_defaults(handler=show_merchant)

    offers_parser = commands.add_parser("offers", help="a merchant's offers: create, change, archive, list")
    offer_commands = offers_parser.add_subparsers(dest="offer_command", required=True)
    create_offer_parser = offer_commands.add_parser("create", help="a new offer of a merchant")
    _offer_options(create_offer_parser, creating=True)
    create_offer_parser.set_defaults(handler=create_offer)
    update_offer_parser = offer_commands.add_parser(
        "update", help="change the terms given (one with subscriptions keeps its price and periodicity)")
    _offer_options(update_offer_parser, creating=False)
    update_offer_parser.set_defaults(handler=update_offer)
    list_offers_parser = offer_commands.add_parser("list", help="a merchant's offers by id, a page at a time")
    list_offers_parser.add_argument("--merchant", required=True)
    list_offers_parser.add_argument("--status", choices=("active", "archived"))
    _page_options(list_offers_parser)
    list_offers_parser.set_defaults(handler=list_offers)
def failed_refunds(args):
    with cluster_rpc(load_config()) as rpc:
        refunds = rpc.billing.list_failed_refunds(merchant_id=args.merchant)
    for refund in refunds:
        print(f"{refund['settled_at']}  {refund['order_code']}  {refund['amount_cents']} cents  "
              f"{refund['failure_reason']}  {refund['merchant_id']}  refund {refund['id']}")


def read_secret(source, what, stdin=None):
    """A secret from a file, or from standard input for `-` (typed without echo on a
    terminal): never from the command line, which `ps` shows to everyone."""
    stdin = stdin or sys.stdin
    if source == "-":
        if stdin.isatty():
            import getpass

            return getpass.getpass(f"{what}: ").strip()
        return stdin.readline().strip()
    with open(source, encoding="utf-8") as secret_file:
        return secret_file.read().strip()


def set_processor_account(args):
    account = {
        "merchant_id": args.merchant, "processor": args.processor, "environment": args.environment,
        "api_key": read_secret(args.api_key_file, "API key") if args.api_key_file else None,
        "webhook_token": read_secret(args.webhook_token_file, "webhook token") if args.webhook_token_file else None,
        "notify": args.notify,
    }
    with cluster_rpc(load_config()) as rpc:
        saved = rpc.billing.set_processor_account(account)
    print(f"{saved['merchant_id']}: {saved['processor']} ({saved['environment']}), API key …{saved['api_key_hint']}; "
          f"its owners ({', '.join(saved['notify'])}) are told by e-mail")
    if saved["processor"] == "mercadopago":
        print(f"notification URL, to set in Mercado Pago's Your integrations > Webhooks (Payments): "
              f"{saved['callback_url']}")
    elif saved["callback_url"]:
        print(f"callback URL (registered with {saved['processor']} when billing made the token): "
              f"{saved['callback_url']}")


def list_processor_accounts(args):
    with cluster_rpc(load_config()) as rpc:
        accounts = rpc.billing.list_processor_accounts(args.merchant)
    for account in accounts:
        print(f"{account['id']}  {account['merchant_id']}  {account['processor']}  {account['environment']}  "
              f"key …{account['api_key_hint']}  owners {', '.join(account['notify'])}  updated {account['updated_at']}")


def rotate_credential_keys(args):
    with cluster_rpc(load_config()) as rpc:
        rotated = rpc.billing.rotate_credential_keys()
    print(f"{rotated['resealed']} account(s) sealed again with the first key of BILLING_CREDENTIAL_KEYS")


def new_credential_key(args):
    from services.billing.credentials import new_key

    print(new_key())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="portalctl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    add_catalog_commands(commands)

    migrate_parser = commands.add_parser("migrate", help="apply every pending migration")
    migrate_parser.add_argument("--service", action="append", choices=migrations.SERVICES_WITH_DATABASE)
    migrate_parser.set_defaults(handler=migrate)

    demo_parser = commands.add_parser("demo", help="load the demo merchants, offers and buyers (idempotent)")
    demo_parser.set_defaults(handler=demo)

    revision_parser = commands.add_parser("new-migration", help="autogenerate a migration for a service")
    revision_parser.add_argument("service", choices=migrations.SERVICES_WITH_DATABASE)
    revision_parser.add_argument("-m", "--message", required=True)
    revision_parser.set_defaults(handler=new_migration)

    events_parser = commands.add_parser("events", help="watch events; review dead letters and unrouted events")
    events_commands = events_parser.add_subparsers(dest="command_name", required=True)
    tail_parser = events_commands.add_parser("tail", help="print events as they are published")
    tail_parser.add_argument("--type", default="*", help="glob on the event type, e.g. 'subscription_*'")
    tail_parser.add_argument("--count", type=int, help="stop after this many events")
    tail_parser.add_argument("--idle-seconds", type=float, help="stop after this long without an event")
    tail_parser.set_defaults(handler=events_tail)
    for name, what in (("dead-letters", "events a consumer gave up on"), ("unrouted", "events nobody was bound for")):
        review_parser = events_commands.add_parser(name, help=f"list {what}; --send-back ID|all to deliver again")
        review_parser.add_argument("--type", default="*", help="glob on the event type")
        review_parser.add_argument("--send-back", metavar="EVENT_ID|all")
        review_parser.set_defaults(handler=events_review)

    keys_parser = commands.add_parser("api-keys", help="merchants' API keys (stored hashed; shown once)")
    key_commands = keys_parser.add_subparsers(dest="key_command", required=True)
    create_parser = key_commands.add_parser("create", help="create a key for a merchant and print it once")
    create_parser.add_argument("--merchant", required=True, help="the merchant's id, e.g. acme-cursos")
    create_parser.set_defaults(handler=create_api_key)
    revoke_parser = key_commands.add_parser("revoke", help="stop a key from working, by its prefix")
    revoke_parser.add_argument("prefix")
    revoke_parser.set_defaults(handler=revoke_api_key)
    list_parser = key_commands.add_parser("list", help="list keys (prefixes only)")
    list_parser.add_argument("--merchant")
    list_parser.set_defaults(handler=list_api_keys)

    mail_parser = commands.add_parser("mail", help="outgoing e-mails: list them, send a failed one again")
    mail_commands = mail_parser.add_subparsers(dest="mail_command", required=True)
    mail_list_parser = mail_commands.add_parser("list", help="newest e-mails first (never their bodies)")
    mail_list_parser.add_argument("--status", help="queued, sending, sent, failed or dropped")
    mail_list_parser.add_argument("--limit", type=int, default=50)
    mail_list_parser.set_defaults(handler=mail_list)
    mail_retry_parser = mail_commands.add_parser("retry", help="queue a failed e-mail again")
    mail_retry_parser.add_argument("id")
    mail_retry_parser.set_defaults(handler=mail_retry)

    webhooks_parser = commands.add_parser("webhooks", help="deliveries to merchants' endpoints: log and replay")
    webhook_commands = webhooks_parser.add_subparsers(dest="webhook_command", required=True)
    deliveries_parser = webhook_commands.add_parser("deliveries", help="newest deliveries, each with its attempts")
    deliveries_parser.add_argument("--merchant")
    deliveries_parser.add_argument("--limit", type=int, default=50)
    deliveries_parser.set_defaults(handler=webhook_deliveries)
    replay_parser = webhook_commands.add_parser("replay", help="deliver a delivered or failed webhook again")
    replay_parser.add_argument("id")
    replay_parser.set_defaults(handler=webhook_replay)

    payments_parser = commands.add_parser("payments", help="payments that need an operator")
    payment_commands = payments_parser.add_subparsers(dest="payment_command", required=True)
    not_applied_parser = payment_commands.add_parser(
        "not-applied", help="paid orders no subscription took (to refund), newest first")
    not_applied_parser.add_argument("--merchant")
    not_applied_parser.add_argument("--limit", type=int, default=100)
    not_applied_parser.set_defaults(handler=payments_not_applied)

    refunds_parser = commands.add_parser("refunds", help="refunds that need an operator")
    refund_commands = refunds_parser.add_subparsers(dest="refund_command", required=True)
    failed_parser = refund_commands.add_parser("failed", help="refunds the processor refused, oldest first")
    failed_parser.add_argument("--merchant")
    failed_parser.set_defaults(handler=failed_refunds)

    accounts_parser = commands.add_parser(
        "processor-accounts", help="merchants' payment processor accounts (credentials sealed in billing)")
    account_commands = accounts_parser.add_subparsers(dest="account_command", required=True)
    # No abbreviations: `--api-key <secret>` must not pass for `--api-key-file`.
    set_parser = account_commands.add_parser(
        "set", help="create or replace a merchant's account; its owners get an e-mail", allow_abbrev=False)
    set_parser.add_argument("--merchant", required=True, help="the merchant's id, e.g. acme-cursos")
    set_parser.add_argument("--processor", required=True, choices=("sandbox", "asaas", "mercadopago"))
    set_parser.add_argument("--environment", required=True, choices=("sandbox", "production"))
    set_parser.add_argument("--api-key-file", metavar="PATH|-", help="a file holding the API key, or - for stdin")
    set_parser.add_argument(
        "--webhook-token-file", metavar="PATH|-",
        help="the token Asaas sends with its webhooks, or the secret Mercado Pago signs its notifications "
             "with (a file, or - for stdin); left out for Asaas, billing makes one and registers the webhook "
             "with Asaas; required for Mercado Pago (its panel issues it)")
    set_parser.add_argument("--notify", action="append", required=True, metavar="EMAIL",
                            help="an owner of the merchant told of every change (repeat for more)")
    set_parser.set_defaults(handler=set_processor_account)
    accounts_list_parser = account_commands.add_parser("list", help="accounts (never a secret; the key's last four)")
    accounts_list_parser.add_argument("--merchant")
    accounts_list_parser.set_defaults(handler=list_processor_accounts)
    rotate_parser = account_commands.add_parser(
        "rotate-keys", help="seal every account again with the first key of BILLING_CREDENTIAL_KEYS")
    rotate_parser.set_defaults(handler=rotate_credential_keys)
    new_key_parser = account_commands.add_parser("new-key", help="print a new key for BILLING_CREDENTIAL_KEYS")
    new_key_parser.set_defaults(handler=new_credential_key)

    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except PortalError as error:
        print(f"portalctl: {error.message}", file=sys.stderr)
        for field, problems in (error.fields or {}).items():
            print(f"  {field}: {problems}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
