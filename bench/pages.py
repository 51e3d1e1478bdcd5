"""Portal pages through the gateway against the single-process baseline (bench/baseline.py):
maximum throughput of each (closed loop), and latency at a fixed arrival rate (open loop)."""
import subprocess
import sys
import time

import eventlet

from bench.memory import cpu_seconds
from bench.openloop import run_closed_loop, run_open_loop
from devtools.lifetime import terminate_with_parent
from services.common.config import REPO_ROOT


def start_baseline(env, port):
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline", str(port)], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, text=True, preexec_fn=terminate_with_parent,
    )
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the baseline server did not start")
    return process


def settle(pool, path, timeout=90):
    """Wait until `path` answers 200: after an open loop that overloaded the server,
    the requests its clients gave up on are still queued there."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return pool.get(path)
        except (OSError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            eventlet.sleep(1)


def compare_throughput(contenders, path, clients, duration, rounds):
    """Maximum throughput of each contender ({name: (KeepAlivePool, pids serving it)})
    on `path`: closed loops of `duration / rounds` seconds, taking turns, so that a
    change in the shared machine's load falls on all of them alike. Also the CPU time
    the serving processes spent per page, which the other tenants of the machine do
    not distort (the broker's share is not counted: it serves other runs too).
    {name: {"pages_per_second", "cpu_ms_per_page", "failures"}}."""
    answered = {name: 0.0 for name in contenders}
    cpu = {name: 0.0 for name in contenders}
    failures = {name: [] for name in contenders}
    for pool, _ in contenders.values():
        settle(pool, path)
    for _ in range(rounds):
        for name, (pool, pids) in contenders.items():
            cpu_before = cpu_seconds(pids)
            rate, failed = run_closed_loop(lambda pool=pool: pool.get(path), clients, duration / rounds)
            cpu[name] += cpu_seconds(pids) - cpu_before
            answered[name] += rate * duration / rounds
            failures[name] += failed
    return {name: {"pages_per_second": round(answered[name] / duration, 1),
                   "cpu_ms_per_page": round(1000 * cpu[name] / answered[name], 2) if answered[name] else None,
                   "failures": len(failures[name]), "first_failures": failures[name][:3]} for name in contenders}


def latency_at_rate(pool, path, rate, duration, timeout):
    latencies, failures = run_open_loop(lambda: pool.get(path), rate, duration, timeout)
    return latencies, {"failures": len(failures), "first_failures": failures[:3]}
