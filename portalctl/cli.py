"""`portalctl`: operate the portal from a shell (migrations, demo data, ...)."""
import argparse
import sys

from services.common import migrations
from services.common.config import load_config


def cluster_rpc(config):
    """A standalone RPC client with the same deadline as the services' own calls."""
    from nameko.standalone.rpc import ClusterRpcProxy

    return ClusterRpcProxy(config, timeout=float(config.get("RPC_TIMEOUT", 5)))


def migrate(args):
    for service in args.service or migrations.SERVICES_WITH_DATABASE:
        migrations.upgrade(service)
        print(f"{service}: database at the newest revision")


def demo(args):
    from portalctl.demo import load_demo

    with cluster_rpc(load_config()) as rpc:
        summary = load_demo(rpc)
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="portalctl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

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

    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
