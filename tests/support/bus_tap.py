"""A copy of what crosses the bus, from the moment the tap is opened: every RPC message
(requests and replies) and every event of every service. A thread reads the copies as
they come, since RPC requests expire after their deadline, in a copy as anywhere.
With publisher confirms, a message a request caused is copied before its answer."""
import json
import threading
import time
import uuid
from queue import Empty

from kombu import Connection, Exchange, Queue, binding

SERVICES = ("auth", "subscriptions", "billing", "notifications")


class BusTap:
    def __init__(self, amqp_uri):
        self.connection = Connection(amqp_uri)
        exchanges = [Exchange("nameko-rpc", type="topic", durable=True)] + [
            Exchange(f"{service}.events", type="topic", durable=True) for service in SERVICES
        ]
        queue = Queue(
            f"test-tap-{uuid.uuid4().hex}",
            bindings=[binding(exchange, routing_key="#") for exchange in exchanges],
            exclusive=True,
        )
        self.queue = self.connection.SimpleQueue(queue)  # bound before the constructor returns
        self._copied = []
        self._lock = threading.Lock()
        self._open = True
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while self._open:
            try:
                message = self.queue.get(timeout=0.2)
            except Empty:
                continue
            message.ack()
            with self._lock:
                self._copied.append(message)

    def messages(self, quiet=1.0):
        """Every message copied since the last call, once none has come for `quiet` s."""
        seen = len(self._copied)
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            time.sleep(0.05)
            if len(self._copied) != seen:
                seen, last = len(self._copied), time.monotonic()
        with self._lock:
            found, self._copied = self._copied, []
        return found

    def close(self):
        self._open = False
        self._reader.join()
        self.queue.close()
        self.connection.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def rpc_requests_from_gateway(messages):
    """`<service>.<method>` of each RPC request the gateway itself made (the last call
    id of a request's stack is its caller's)."""
    return [
        message.delivery_info["routing_key"] for message in messages
        if message.delivery_info["exchange"] == "nameko-rpc"
        and str((message.headers.get("nameko.call_id_stack") or [""])[-1]).startswith("gateway.")
    ]


def events(messages):
    return [json.loads(message.body) for message in messages if message.delivery_info["exchange"].endswith(".events")]
