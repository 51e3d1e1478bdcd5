"""Follow the portal's events from another system, with plain pika and nothing else.

    python examples/consume_events.py --queue crm.subscriptions --bind 'subscriptions:subscription_*'

Declares a durable queue of your own, binds it to the event exchanges you name,
acknowledges each message only after handling it, and skips an event_id it has
already handled (delivery is at least once). Stop with Ctrl-C. Against a deployment,
run it as the `events-reader` broker user, with a queue named `events-reader.<yours>`.
"""
import argparse
import fnmatch
import json
import os

import pika


def parse_bindings(values):
    """'subscriptions:subscription_*' -> ('subscriptions.events', 'subscription_*')."""
    for value in values:
        service, _, pattern = value.partition(":")
        yield f"{service}.events", pattern or "*"


def exchange_exists(connection, channel, exchange):
    """Make sure `exchange` exists; the channel to go on with.

    A deployment's broker declares the event exchanges itself, and its `events-reader`
    user may not declare them: look first (a passive declare). On a broker where no
    service has run yet, the look closes the channel, and the exchange is declared
    on a new one, as the portal declares it."""
    try:
        channel.exchange_declare(exchange, exchange_type="topic", durable=True, passive=True)
        return channel
    except pika.exceptions.ChannelClosedByBroker as closed:
        if closed.reply_code != 404:
            raise
    channel = connection.channel()
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    return channel


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/"))
    parser.add_argument("--queue", required=True, help="your own durable queue, e.g. crm.subscriptions")
    parser.add_argument("--bind", action="append", required=True,
                        help="SERVICE:TYPE-GLOB, e.g. subscriptions:subscription_* (repeatable)")
    parser.add_argument("--count", type=int, help="stop after this many events (default: run until Ctrl-C)")
    args = parser.parse_args()

    bindings = list(parse_bindings(args.bind))
    connection = pika.BlockingConnection(pika.URLParameters(args.amqp_uri))
    channel = connection.channel()
    channel.queue_declare(args.queue, durable=True)
    for exchange, _pattern in bindings:
        channel = exchange_exists(connection, channel, exchange)
        # Topic wildcards match whole words only; event types are one word, so bind
        # everything and filter with the glob below.
        channel.queue_bind(args.queue, exchange, routing_key="#")
    channel.basic_qos(prefetch_count=20)

    handled = set()  # keep this in your database in a real consumer
    seen = 0
    for method, properties, body in channel.consume(args.queue):
        event = json.loads(body)
        wanted = any(exchange == method.exchange and fnmatch.fnmatchcase(method.routing_key, pattern)
                     for exchange, pattern in bindings)
        if wanted and event["event_id"] not in handled:
            print(json.dumps(event, ensure_ascii=False), flush=True)
            handled.add(event["event_id"])
            seen += 1
        channel.basic_ack(method.delivery_tag)
        if args.count and seen >= args.count:
            break
    channel.cancel()
    connection.close()


if __name__ == "__main__":
    main()
