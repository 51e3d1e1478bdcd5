"""Portal pages through the gateway against the single-process baseline (bench/baseline.py):
maximum throughput of each (closed loop), and latency at a fixed arrival rate (open loop)."""
import subprocess
import sys

from bench.httpclient import KeepAlivePool
from bench.openloop import run_closed_loop, run_open_loop
from services.common.config import REPO_ROOT


def start_baseline(env, port):
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline", str(port)], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, text=True,
    )
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the baseline server did not start")
    return process


def throughput(pool, path, clients, duration):
    pool.get(path)  # the answer must be a 200 before it is counted
    rate, failures = run_closed_loop(lambda: pool.get(path), clients, duration)
    return {"pages_per_second": round(rate, 1), "failures": len(failures), "first_failures": failures[:3]}


def latency_at_rate(pool, path, rate, duration, timeout):
    latencies, failures = run_open_loop(lambda: pool.get(path), rate, duration, timeout)
    return latencies, {"failures": len(failures), "first_failures": failures[:3]}
