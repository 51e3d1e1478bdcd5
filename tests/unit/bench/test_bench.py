"""The parts of bench/ that can be checked on their own (statistics, the open-loop
scheduler, the report writer, the CPU meters and the sampler), so that `make bench`
cannot rot between runs. The benchmarks themselves are not tests."""
import json
import os
import subprocess
import sys

import eventlet
import pytest

from bench import memory, openloop, profile, report, stats
from support.waiting import wait_until


def test_percentiles_are_measured_values_by_nearest_rank():
    samples = [float(value) for value in range(1, 101)]
    assert stats.percentile(samples, 0.50) == 50.0
    assert stats.percentile(samples, 0.99) == 99.0
    assert stats.percentile(samples, 1.0) == 100.0
    assert stats.percentile([0.3, 0.1, 0.2], 0.5) == 0.2
    assert stats.percentile([7.0], 0.99) == 7.0


def test_percentile_refuses_what_it_cannot_answer():
    with pytest.raises(ValueError):
        stats.percentile([], 0.5)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 1.5)


def test_summary_is_in_milliseconds():
    assert stats.summary_ms([0.001, 0.002, 0.010]) == {"count": 3, "p50_ms": 2.0, "p99_ms": 10.0, "max_ms": 10.0}
    assert stats.summary_ms([]) == {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    assert stats.ratio(3.0, 2.0) == 1.5
    assert stats.ratio(1.0, 0) is None


def test_schedule_is_evenly_spaced_at_the_rate():
    due = openloop.schedule(rate=100, duration=2)
    assert len(due) == 200
    assert due[0] == 0 and due[1] == pytest.approx(0.01) and due[-1] == pytest.approx(1.99)
    with pytest.raises(ValueError):
        openloop.schedule(rate=0, duration=1)


def test_latency_counts_from_the_scheduled_moment_not_the_sending():
    # The second request was due at 0.01 s but, queued behind the first, finished at 0.5 s.
    assert openloop.latencies_from([0.0, 0.01], [0.1, 0.5]) == pytest.approx([0.1, 0.49])


def test_open_loop_keeps_sending_on_schedule_while_answers_queue():
    """A server that answers one request at a time, 20 ms each, at 100 requests/s:
    a closed loop would see 20 ms every time; the open loop sees the queue grow."""
    one_at_a_time = eventlet.semaphore.Semaphore(1)

    def send():
        with one_at_a_time:
            eventlet.sleep(0.02)

    latencies, failures = openloop.run_open_loop(send, rate=100, duration=0.5, timeout=5)
    assert failures == []
    assert len(latencies) == 50
    # 50 requests × 20 ms of service take ≥ 1 s, so the last waited ≳ 0.5 s past its due time.
    assert max(latencies) >= 0.45


def test_open_loop_counts_a_late_answer_as_a_failure():
    latencies, failures = openloop.run_open_loop(lambda: eventlet.sleep(1), rate=20, duration=0.1, timeout=0.05)
    assert latencies == []
    assert len(failures) == 2


def test_closed_loop_measures_answers_per_second():
    rate, failures = openloop.run_closed_loop(lambda: eventlet.sleep(0.01), clients=2, duration=0.3)
    assert failures == []
    assert 0 < rate <= 200  # two clients, each answer taking at least 10 ms: at most 200/s


def results(rpc_ratio=1.2, p99=80.0, renewals_per_second=250.0, rss=90.0):
    summary = {"count": 100, "p50_ms": 10.0, "p99_ms": p99, "max_ms": p99 + 1}
    page = {
        "route": "/api/v1/me/orders", "gateway": {"pages_per_second": 120.0}, "baseline": {"pages_per_second": 200.0},
        "throughput_ratio": 0.6, "cpu_ratio": 1.6, "open_loop": {"rate": 100, "duration_s": 20, **summary, "failures": 0},
    }
    return {
        "label": "example", "generated_at": "2026-12-02T00:00:00+00:00", "quick": False,
        "machine": {"cpus": 2, "python": "3.11.7", "load_average": 1.0}, "settings": {},
        "rpc": {"project": summary, "raw_pika": summary, "ratio_p50": rpc_ratio, "ratio_p99": 1.0},
        "pages": {"orders_list": page, "subscription_detail": {**page, "route": "/api/v1/me/subscriptions/{id}"}},
        "login": {**summary, "failures": 0},
        "renewals": {"replicas_1": {"replicas": 1, "count": 10, "renewed": 10, "seconds": 0.04,
                                    "per_second": renewals_per_second}},
        "memory_mb": {"idle": {"gateway": 60.0}, "under_page_load": {"gateway": rss}},
    }


def test_targets_are_judged_from_the_measurements():
    met = {what: ok for what, _, _, ok in report.targets(results())}
    assert all(met.values())
    missed = {what: ok for what, _, _, ok in report.targets(results(rpc_ratio=3.4, p99=250.0, rss=140.0))}
    assert not missed["RPC round trip p50, project ÷ raw pika"]
    assert not missed["orders list: p99 at 100 pages/s (ms)"]
    assert not missed["largest RSS of a service process (MB)"]
    assert met["orders list: baseline CPU per page ÷ services' CPU per page"]  # 1 / 1.6 = 0.625
    assert missed["renewals per second, 1 replica(s)"]
    nothing_answered = results()
    nothing_answered["pages"]["orders_list"]["open_loop"].update(p99_ms=None, failures=2000)
    assert not {what: ok for what, _, _, ok in report.targets(nothing_answered)}["orders list: p99 at 100 pages/s (ms)"]


def test_report_shows_the_run_and_the_kept_runs(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "01-before.json").write_text(json.dumps({**results(rpc_ratio=4.1), "label": "01-before"}))
    findings = tmp_path / "findings.md"
    findings.write_text("## Findings\n\nWhy the numbers are what they are.\n")
    report.write(results(rpc_ratio=1.3), tmp_path / "out", runs, findings)

    written = json.loads((tmp_path / "out" / "performance.json").read_text())
    assert written["rpc"]["ratio_p50"] == 1.3
    markdown = (tmp_path / "out" / "performance.md").read_text()
    assert "| RPC round trip p50, project ÷ raw pika | 1.3 | ≤ 1.5× | yes |" in markdown
    assert "| RPC round trip p50, project ÷ raw pika | 4.1 |" in markdown  # the kept run's column
    assert "Why the numbers are what they are." in markdown
    assert "## How to reproduce" in markdown


def test_profile_summary_counts_each_function_once_per_sample():
    collapsed = "\n".join([
        "main (a.py:1);handle (web.py:10);publish (rpc.py:5) 3",
        "main (a.py:1);handle (web.py:10);handle (web.py:12) 1",
        "main (a.py:1);poll (hub.py:3) 4",
    ])
    top, samples = profile.summary(collapsed)
    assert samples == 8
    assert dict((function, percent) for percent, function in top) == {
        "main (a.py)": 100.0, "poll (hub.py)": 50.0, "handle (web.py)": 50.0, "publish (rpc.py)": 37.5,
    }


def test_report_shows_the_profiles_a_run_took(tmp_path):
    run = {**results(), "profiles": {"pages-orders_list": {"gateway": {
        "samples": 8, "top": [[100.0, "main (a.py)"], [37.5, "publish (rpc.py)"]]}}}}
    markdown = report.render(run, [], "")
    assert "**gateway** during `pages-orders_list` (8 samples)" in markdown
    assert "| 37.5 | `publish (rpc.py)` |" in markdown
    assert "This run took none" not in markdown


def test_an_unprofiled_run_shows_the_profiles_of_the_newest_kept_run_that_took_them():
    def profiled(label, function):
        return {**results(), "label": label, "generated_at": "2026-12-02T18:00:00+00:00", "profiles": {
            "renewals": {"billing": {"samples": 3, "top": [[100.0, function]]}}}}

    kept = [profiled("01-old", "old (a.py)"), profiled("02-new", "new (a.py)"), {**results(), "label": "03-plain"}]
    markdown = report.render({**results(), "label": "04"}, kept, "")
    assert "these are those of `02-new`" in markdown
    assert "`new (a.py)`" in markdown and "`old (a.py)`" not in markdown
    assert "No run took profiles" in report.render(results(), [], "")


# Some work, then the CPU time the child itself counted, in seconds.
BURN_AND_REPORT = ("import resource\nsum(i * i for i in range(3_000_000))\n"
                   "usage = resource.getrusage(resource.RUSAGE_SELF)\nprint(usage.ru_utime + usage.ru_stime)\n")
# /proc counts CPU in clock ticks (1/100 s): each reading may be short by one.
TICK = 2 / os.sysconf("SC_CLK_TCK")


def test_a_servers_cpu_counts_the_children_it_forked_even_once_they_exited():
    """PostgreSQL's cost is its backends': a child's CPU still counts after it was reaped."""
    own, tree = memory.cpu_seconds([os.getpid()]), memory.tree_cpu_seconds(os.getpid())
    machine = memory.machine_busy_seconds()
    child = float(subprocess.run([sys.executable, "-c", BURN_AND_REPORT], check=True, capture_output=True,
                                 text=True).stdout)

    tree_grew, own_grew = memory.tree_cpu_seconds(os.getpid()) - tree, memory.cpu_seconds([os.getpid()]) - own
    assert tree_grew >= own_grew + child - TICK
    assert memory.machine_busy_seconds() - machine >= child - TICK
    # The process's own meter leaves the child out.
    assert memory.cpu_seconds([os.getpid()]) - own < tree_grew


def test_a_sampling_runs_until_it_is_stopped_and_keeps_what_it_saw(tmp_path):
    spinning = subprocess.Popen([sys.executable, "-c", "while True: sum(range(1000))"])
    try:
        sampler = profile.start(spinning.pid, tmp_path / "samples.txt", rate=100)
        # Until the sampled process has run a while, however busy the machine is.
        wait_until(lambda: memory.cpu_seconds([spinning.pid]) >= 0.5, message="the spinning process to run")
        profile.stop(sampler)
    finally:
        spinning.kill()
        spinning.wait()
    top, samples = profile.summary((tmp_path / "samples.txt").read_text())
    assert samples > 0
    assert any("<module>" in function for _, function in top)


def test_the_renewal_table_shows_how_busy_the_machine_was():
    run = results()
    run["renewals"]["replicas_1"]["machine_cpu_seconds"] = {"busy": 171.3, "available": 180.2}
    assert "| 171.3 / 180.2 |" in report.render(run, [], "")
