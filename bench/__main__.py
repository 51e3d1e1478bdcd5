"""`make bench`: start the system on PostgreSQL, run every benchmark, write the report.

BENCH_QUICK=1 runs the same steps with small counts and short loops (and writes to
var/bench/, so the published numbers stay those of a full run); BENCH_LABEL=<name>
also keeps the results in docs/performance-runs/<name>.json.
"""
import eventlet

eventlet.monkey_patch()

import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from services.common.config import REPO_ROOT  # noqa: E402

sys.path.insert(0, str(REPO_ROOT / "tests"))  # the system launcher the end-to-end tests use

from bench import login, memory, pages, profile, renewals, report, rpc_round_trip  # noqa: E402
from bench.httpclient import KeepAlivePool  # noqa: E402
from bench.stats import ratio, summary_ms  # noqa: E402
from services.common import clock  # noqa: E402
from services.common.config import load_config  # noqa: E402
from services.common.db import make_engine  # noqa: E402
from bench.postgres import PrivatePostgres  # noqa: E402
from devtools.lifetime import terminate_with_parent  # noqa: E402
from support import databases  # noqa: E402
from support.portal_client import log_in  # noqa: E402
from support.ports import free_port  # noqa: E402
from support.system import RunningSystem  # noqa: E402

FULL = {
    "rpc_rounds": 10, "rpc_calls_per_round": 200, "rpc_warm_up": 100,
    "page_clients": 20, "page_throughput_seconds": 10, "page_throughput_rounds": 5, "page_rate": 100, "page_rate_seconds": 20,
    "logins": 40, "renewals": 10_000, "renewal_timeout_seconds": 90,
}
QUICK = {
    "rpc_rounds": 3, "rpc_calls_per_round": 50, "rpc_warm_up": 20,
    "page_clients": 10, "page_throughput_seconds": 2, "page_throughput_rounds": 2, "page_rate": 100, "page_rate_seconds": 3,
    "logins": 5, "renewals": 300, "renewal_timeout_seconds": 60,
}
PAGE_ROUTES = {
    "orders_list": "/api/v1/me/orders",
    "subscription_detail": "/api/v1/me/subscriptions/{subscription_id}",
}
BUYER = "ana@example.com"
REQUEST_TIMEOUT = 10
# BENCH_PROFILE=1: py-spy samples these processes while a phase runs (it costs them some
# CPU, so a profiled run's numbers are a little worse than an unprofiled one's); "caller"
# is the bench's own process, which makes the project's RPCs.
PROFILED = {"rpc": ("caller", "subscriptions"), "pages": ("gateway", "auth", "billing", "subscriptions"),
            "renewals": ("subscriptions", "billing", "notifications")}
# Samples per second: the RPC phase lasts a few seconds, the others a minute or more.
SAMPLING_RATES = {"rpc": 500, "pages": 50, "renewals": 50}


class Profiles:
    """The profiles of a run: raw samples in `folder`, summaries in `results`."""

    def __init__(self, enabled, folder):
        self.enabled, self.folder = enabled, folder
        self.results = {}

    def during(self, phase, pids):
        """Start sampling `phase`'s processes; call the result when the phase is done."""
        if not self.enabled:
            return lambda: None
        self.folder.mkdir(parents=True, exist_ok=True)
        pids = {**pids, "caller": [os.getpid()]}
        kind = phase.split("-")[0]
        running = {name: (profile.start(pids[name][0], self.folder / f"{phase}-{name}.txt", SAMPLING_RATES[kind]),
                          self.folder / f"{phase}-{name}.txt") for name in PROFILED[kind]}

        def collect():
            for name, (sampler, path) in running.items():
                profile.stop(sampler)
                top, samples = profile.summary(path.read_text() if path.exists() else "")
                self.results.setdefault(phase, {})[name] = {"samples": samples, "top": top}
        return collect


def start_system(folder):
    clock_file = folder / "clock.json"
    clock.write_clock_file(str(clock_file), offset_seconds=0)
    system = RunningSystem(folder / "system", database_backend="postgresql", rpc_timeout=5, extra_env={
        "CLOCK_FILE": str(clock_file),
        # Every replica's renewal job looks for due subscriptions each second.
        "RENEWAL_INTERVAL": "1",
        # The launcher's test setting polls outboxes five times a second; production's is once.
        "OUTBOX_POLL_INTERVAL": "1",
    })
    system.start()
    # This process is a client of that system: same broker, databases and clock.
    os.environ.update({key: system.env[key] for key in ("AMQP_URI", "CLOCK_FILE")})
    return system, clock_file


def add_replicas(system, services):
    """One more process of each of `services`, joining the running system."""
    commands = {
        "subscriptions": "services.subscriptions.service:SubscriptionsService",
        "billing": "services.billing.service:BillingService",
    }
    started = []
    for service in services:
        env = {**system.env, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}
        log = (system.folder / f"extra-{service}.log").open("wb")
        started.append(subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", "config.yaml", commands[service]],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=terminate_with_parent,
        ))
    time.sleep(5)  # nameko connects and declares its queues within a few seconds
    for process in started:
        if process.poll() is not None:
            raise RuntimeError("an added replica exited at start-up; see its log in the run's folder")
    return started


def page_benchmarks(system, settings, token, subscription_id, sampler_pids, profiles):
    headers = {"Authorization": f"Bearer {token}"}
    gateway = KeepAlivePool("127.0.0.1", system.gateway_port, headers, REQUEST_TIMEOUT)
    baseline_port = free_port()
    baseline_process = pages.start_baseline(system.env, baseline_port)
    baseline = KeepAlivePool("127.0.0.1", baseline_port, headers, REQUEST_TIMEOUT)
    results = {}
    try:
        with memory.PeakSampler(sampler_pids) as sampler:
            for key, route in PAGE_ROUTES.items():
                path = route.format(subscription_id=subscription_id)
                serving = [pid for name in ("gateway", "auth", "billing", "subscriptions") for pid in sampler_pids[name]]
                through = pages.compare_throughput({"gateway": (gateway, serving),
                                                    "baseline": (baseline, [baseline_process.pid])}, path,
                                                   settings["page_clients"], settings["page_throughput_seconds"],
                                                   settings["page_throughput_rounds"])
                through_gateway, through_baseline = through["gateway"], through["baseline"]
                collect = profiles.during(f"pages-{key}", sampler_pids)
                latencies, outcome = pages.latency_at_rate(
                    gateway, path, settings["page_rate"], settings["page_rate_seconds"], REQUEST_TIMEOUT)
                collect()
                pages.settle(gateway, path)
                results[key] = {
                    "route": route,
                    "gateway": through_gateway,
                    "baseline": through_baseline,
                    "throughput_ratio": ratio(through_gateway["pages_per_second"],
                                              through_baseline["pages_per_second"]),
                    "cpu_ratio": ratio(through_gateway["cpu_ms_per_page"], through_baseline["cpu_ms_per_page"]),
                    "open_loop": {"rate": settings["page_rate"], "duration_s": settings["page_rate_seconds"],
                                  **summary_ms(latencies), **outcome},
                }
    finally:
        gateway.close()
        baseline.close()
        baseline_process.kill()
        baseline_process.wait()
    return results, sampler.peak


def renewal_benchmarks(system, clock_file, settings, pids, profiles, servers):
    """`servers`: {name: a function giving its CPU seconds so far} of the servers the
    services use (PostgreSQL, the broker), counted beside the services' processes."""
    from portalctl.cli import cluster_rpc

    engine = make_engine(system.database_urls["subscriptions"])
    results = {}
    extra = []
    try:
        for replicas in (1, 2):
            if replicas == 2:
                extra = add_replicas(system, ["subscriptions", "billing"])
            label = f"bench-renewal-r{replicas}"
            with cluster_rpc(load_config()) as rpc:
                created_in = renewals.create_batch(rpc, engine, label, settings["renewals"])
            collect = profiles.during("renewals", pids) if replicas == 1 else lambda: None
            serving = {**pids, "mail sink": system.pids_of("devtools.mailsink"),
                       **({"added replicas": [process.pid for process in extra]} if extra else {})}
            meters = {name: functools.partial(memory.cpu_seconds, found) for name, found in serving.items()}
            meters.update(servers)
            cpu_before = {name: meter() for name, meter in meters.items()}
            busy_before = memory.machine_busy_seconds()
            batch = renewals.renew_batch(engine, str(clock_file), label, settings["renewals"],
                                         settings["renewal_timeout_seconds"])
            # Which processes the batch kept busy: CPU seconds each spent while it ran,
            # and how much of the machine's CPU was busy (every tenant's, the bench's own too).
            batch["cpu_seconds"] = {name: round(meter() - cpu_before[name], 1) for name, meter in meters.items()}
            batch["machine_cpu_seconds"] = {"busy": round(memory.machine_busy_seconds() - busy_before, 1),
                                            "available": round(batch["seconds"] * os.cpu_count(), 1)}
            collect()
            renewals.park_unrenewed(engine, label)
            results[f"replicas_{replicas}"] = {"replicas": replicas, **batch,
                                               "created_in_seconds": round(created_in, 1)}
            print(f"==> renewals with {replicas} replica(s): {results[f'replicas_{replicas}']}", flush=True)
    finally:
        for process in extra:
            process.terminate()
            process.wait(timeout=30)
        engine.dispose()
    return results


def server_meters(postgres):
    """The CPU meters of the servers the system uses on this machine: the bench's own
    PostgreSQL (a BENCH_POSTGRES_URL server is not counted) and the RabbitMQ node (the
    whole node, whose other vhosts an idle machine leaves idle)."""
    meters = {}
    if postgres:
        meters["PostgreSQL"] = functools.partial(memory.tree_cpu_seconds, postgres.pid)
    broker = memory.pids_named("beam.smp")
    if broker:
        meters["broker"] = functools.partial(memory.cpu_seconds, broker)
    return meters


def run(settings, quick):
    folder = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    load_average = os.getloadavg()[0]
    postgres = None
    if os.environ.get("BENCH_POSTGRES_URL"):
        databases.POSTGRES_ADMIN_URL = os.environ["BENCH_POSTGRES_URL"]
    else:
        postgres = PrivatePostgres(free_port()).start()
        databases.POSTGRES_ADMIN_URL = postgres.admin_url
    try:
        return measure_system(folder, settings, quick, load_average, server_meters(postgres))
    finally:
        if postgres:
            postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def measure_system(folder, settings, quick, load_average, servers):
    system, clock_file = start_system(folder)
    label = os.environ.get("BENCH_LABEL") or ("quick" if quick else "latest")
    profiles = Profiles(os.environ.get("BENCH_PROFILE") == "1", REPO_ROOT / "var" / "bench" / "profiles" / label)
    results = {
        "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": round(load_average, 2)},
        "settings": settings,
    }
    try:
        pids = memory.service_pids(system)
        print(f"==> system up: {pids}", flush=True)
        time.sleep(2)
        idle = memory.snapshot(pids)

        collect = profiles.during("rpc", pids)
        samples = rpc_round_trip.measure(load_config(), settings["rpc_rounds"], settings["rpc_calls_per_round"],
                                         settings["rpc_warm_up"])
        collect()
        project, raw = summary_ms(samples["project"]), summary_ms(samples["raw_pika"])
        results["rpc"] = {"project": project, "raw_pika": raw,
                          "ratio_p50": ratio(project["p50_ms"], raw["p50_ms"]),
                          "ratio_p99": ratio(project["p99_ms"], raw["p99_ms"])}
        print(f"==> rpc: {results['rpc']}", flush=True)

        client, _, started = log_in(system, BUYER)
        session_token = started.json()["session_token"]
        subscription_id = client.get(f"{system.gateway_url}/api/v1/me/subscriptions",
                                     timeout=REQUEST_TIMEOUT).json()["subscriptions"][0]["id"]
        results["pages"], under_load = page_benchmarks(system, settings, session_token, subscription_id, pids,
                                                        profiles)
        print(f"==> pages: {results['pages']}", flush=True)
        results["memory_mb"] = {"idle": idle, "under_page_load": under_load}

        durations, failures = login.measure(system.gateway_url, system.folder / "mail", BUYER,
                                            settings["logins"], pause=0.2)
        results["login"] = {**summary_ms(durations), "failures": len(failures), "first_failures": failures[:3]}
        print(f"==> login: {results['login']}", flush=True)

        results["renewals"] = renewal_benchmarks(system, clock_file, settings, pids, profiles, servers)
        if profiles.results:
            results["profiles"] = profiles.results
    finally:
        system.stop()
    return results


def main():
    # SIGTERM stops the run like Ctrl-C: the system, the databases and the private
    # PostgreSQL are taken down on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    quick = os.environ.get("BENCH_QUICK") == "1"
    results = run(QUICK if quick else FULL, quick)
    label = os.environ.get("BENCH_LABEL")
    results["label"] = label or ("quick" if quick else "latest")
    out_dir = REPO_ROOT / ("var/bench" if quick else "docs")
    runs_dir = REPO_ROOT / "docs" / "performance-runs"
    if label:
        runs_dir.mkdir(parents=True, exist_ok=True)
        (runs_dir / f"{label}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    report.write(results, out_dir, runs_dir, REPO_ROOT / "bench" / "findings.md")
    print(f"==> wrote {out_dir / 'performance.md'} and {out_dir / 'performance.json'}", flush=True)


if __name__ == "__main__":
    main()
