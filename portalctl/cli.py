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

    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
