"""The floor an RPC round trip is measured against: plain pika request/reply on the
same broker, no framework. `serve` answers every request on a queue; `call` reads a
count per line on stdin, makes that many round trips one after another and prints
their durations (seconds) as one JSON line. Each runs as its own process without
eventlet, as a hand-written pika client and server would."""
import json
import sys
import time
import uuid

import pika


def serve(amqp_uri, queue):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    channel.queue_declare(queue, auto_delete=True)
    channel.basic_qos(prefetch_count=10)

    def answer(channel, method, properties, body):
        channel.basic_publish(
            "", properties.reply_to, body,
            pika.BasicProperties(correlation_id=properties.correlation_id, content_type="application/json"),
        )
        channel.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, answer)
    print("ready", flush=True)
    channel.start_consuming()


def call(amqp_uri, queue):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    channel = connection.channel()
    reply_queue = channel.queue_declare("", exclusive=True).method.queue
    replies = {}

    def on_reply(channel, method, properties, body):
        replies[properties.correlation_id] = body

    channel.basic_consume(reply_queue, on_reply, auto_ack=True)
    body = json.dumps({"args": [], "kwargs": {}}).encode()
    print("ready", flush=True)
    for line in sys.stdin:
        durations = []
        for _ in range(int(line)):
            correlation_id = uuid.uuid4().hex
            started = time.perf_counter()
            channel.basic_publish("", queue, body, pika.BasicProperties(
                reply_to=reply_queue, correlation_id=correlation_id, content_type="application/json"))
            while correlation_id not in replies:
                connection.process_data_events(time_limit=None)
            durations.append(time.perf_counter() - started)
            del replies[correlation_id]
        print(json.dumps(durations), flush=True)


if __name__ == "__main__":
    {"serve": serve, "call": call}[sys.argv[1]](sys.argv[2], sys.argv[3])
