"""RPC round trip: a project RPC made the way services call each other (`TimedRpc`
inside a nameko container) against raw pika request/reply on the same broker.

Both loops make one call at a time; rounds alternate between them so that a noisy
neighbour on the shared machine hits both alike.
"""
import json
import subprocess
import sys
import time

from nameko.containers import get_container_cls
from nameko.extensions import Entrypoint
from nameko.testing.services import entrypoint_hook

from devtools.lifetime import terminate_with_parent
from services.common.config import REPO_ROOT
from services.common.rpc import TimedRpc

measured = Entrypoint.decorator


class PingCaller:
    """A service of the bench's own: pings subscriptions as a worker of any service would."""

    name = "bench_rpc_caller"
    subscriptions = TimedRpc("subscriptions")

    @measured
    def ping_many(self, count):
        durations = []
        for _ in range(count):
            started = time.perf_counter()
            self.subscriptions.ping()
            durations.append(time.perf_counter() - started)
        return durations


class RawPika:
    """The raw pika server and client, each its own process (bench/rawpika.py)."""

    def __init__(self, amqp_uri):
        queue = f"bench-raw-rpc-{time.monotonic_ns()}"
        self.server = self._start("serve", amqp_uri, queue)
        self.client = self._start("call", amqp_uri, queue)

    @staticmethod
    def _start(mode, amqp_uri, queue):
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.rawpika", mode, amqp_uri, queue], cwd=REPO_ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=terminate_with_parent,
        )
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"bench.rawpika {mode} did not start")
        return process

    def round_trips(self, count):
        self.client.stdin.write(f"{count}\n")
        self.client.stdin.flush()
        return json.loads(self.client.stdout.readline())

    def stop(self):
        for process in (self.client, self.server):
            process.kill()
            process.wait()


def measure(config, rounds, calls_per_round, warm_up):
    """Durations (seconds) of both kinds of round trip: {"project": [...], "raw_pika": [...]}."""
    container = get_container_cls(config)(PingCaller, config)
    container.start()
    raw = RawPika(config["AMQP_URI"])
    samples = {"project": [], "raw_pika": []}
    try:
        with entrypoint_hook(container, "ping_many") as ping_many:
            ping_many(warm_up)
            raw.round_trips(warm_up)
            for _ in range(rounds):
                samples["project"] += ping_many(calls_per_round)
                samples["raw_pika"] += raw.round_trips(calls_per_round)
    finally:
        raw.stop()
        container.stop()
    return samples
