"""docs/performance.json and docs/performance.md from one run's results.

Every number in the markdown is read from a results dict that a run measured: the
current run's, and those of the earlier runs kept in docs/performance-runs/ (one JSON
each, named so that they sort in the order they were made), which the "Changes" table
sets side by side. The hand-written analysis (bench/findings.md) is included as it is.
"""
import json
from pathlib import Path

PAGES = {"orders_list": "orders list", "subscription_detail": "subscription detail"}
SERVICES = ("gateway", "auth", "subscriptions", "billing", "notifications")
RSS_LIMIT_MB = 100


def _at_most(value, limit):
    return value is not None and value <= limit


def targets(results):
    """Each target of issue 9 with what this run measured: (what, measured, target, met)."""
    rows = [("RPC round trip p50, project ÷ raw pika", results["rpc"]["ratio_p50"], "≤ 1.5×",
             results["rpc"]["ratio_p50"] <= 1.5)]
    for key, name in PAGES.items():
        page = results["pages"][key]
        rows.append((f"{name}: throughput ÷ single-process baseline", page["throughput_ratio"], "≥ 0.5",
                     page["throughput_ratio"] >= 0.5))
        # The same ratio from CPU per page, which the machine's other tenants do not skew.
        if page.get("cpu_ratio"):
            by_cpu = round(1 / page["cpu_ratio"], 3)
            rows.append((f"{name}: baseline CPU per page ÷ services' CPU per page", by_cpu, "≥ 0.5", by_cpu >= 0.5))
    for key, name in PAGES.items():
        open_loop = results["pages"][key]["open_loop"]
        rows.append((f"{name}: p99 at {open_loop['rate']} pages/s (ms)", open_loop["p99_ms"], "≤ 100 ms",
                     _at_most(open_loop["p99_ms"], 100) and open_loop["failures"] == 0))
    rows.append(("login e-mail p99 (ms)", results["login"]["p99_ms"], "≤ 1000 ms",
                 _at_most(results["login"]["p99_ms"], 1000) and results["login"]["failures"] == 0))
    for key, batch in results["renewals"].items():
        rows.append((f"renewals per second, {batch['replicas']} replica(s)", batch["per_second"], "≥ 200",
                     batch["per_second"] >= 200 and batch["renewed"] == batch["count"]))
    largest = max(value for phase in results["memory_mb"].values() for value in phase.values())
    rows.append(("largest RSS of a service process (MB)", largest, f"≤ {RSS_LIMIT_MB} MB",
                 largest <= RSS_LIMIT_MB))
    return rows


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _summary_row(name, summary):
    return (name, summary["count"], summary["p50_ms"], summary["p99_ms"], summary["max_ms"])


def details(results):
    rpc = results["rpc"]
    sections = [
        "### RPC round trip (one call at a time)",
        _table(("", "calls", "p50 ms", "p99 ms", "max ms"), [
            _summary_row("project RPC (`TimedRpc` → subscriptions.ping)", rpc["project"]),
            _summary_row("raw pika request/reply", rpc["raw_pika"]),
        ]),
        f"Ratio project ÷ raw pika: p50 {rpc['ratio_p50']}×, p99 {rpc['ratio_p99']}×.",
        "### Portal pages",
        _table(("page", "route", "gateway pages/s", "baseline pages/s", "ratio",
                "CPU ms/page, services", "CPU ms/page, baseline"), [
            (name, f"`{page['route']}`", page["gateway"]["pages_per_second"], page["baseline"]["pages_per_second"],
             page["throughput_ratio"], page["gateway"].get("cpu_ms_per_page", "–"),
             page["baseline"].get("cpu_ms_per_page", "–"))
            for name, page in ((PAGES[key], results["pages"][key]) for key in PAGES)
        ]),
        "Maximum throughput: 20 clients back to back, the gateway and the baseline taking turns. "
        "CPU per page is the CPU time of the processes that served the pages (gateway, auth, "
        "billing, subscriptions; the broker not counted), a measure the machine's other tenants "
        "do not distort, whereas they do take CPU from a single process more than from four.",
        "Open loop: requests sent on schedule whatever the answers, latency counted from the "
        "scheduled moment; p50/p99/max are of the requests answered, and one not answered "
        "within 10 s is a failure.",
        _table(("page", "open loop pages/s", "requests answered", "p50 ms", "p99 ms", "max ms", "failures"), [
            (name, page["open_loop"]["rate"], page["open_loop"]["count"], page["open_loop"]["p50_ms"],
             page["open_loop"]["p99_ms"], page["open_loop"]["max_ms"], page["open_loop"]["failures"])
            for name, page in ((PAGES[key], results["pages"][key]) for key in PAGES)
        ]),
        "### Login: request to e-mail stored in the sink",
        _table(("logins", "p50 ms", "p99 ms", "max ms", "failures"), [(
            results["login"]["count"], results["login"]["p50_ms"], results["login"]["p99_ms"],
            results["login"]["max_ms"], results["login"]["failures"])]),
        "### Renewal batch",
        _table(("replicas of subscriptions and billing", "due", "renewed", "seconds", "renewals/s",
                "CPU seconds spent meanwhile, by process", "machine CPU seconds busy / available"), [
            (batch["replicas"], batch["count"], batch["renewed"], batch["seconds"], batch["per_second"],
             ", ".join(f"{name} {seconds}" for name, seconds in batch.get("cpu_seconds", {}).items()) or "–",
             "{busy} / {available}".format(**batch["machine_cpu_seconds"]) if "machine_cpu_seconds" in batch else "–")
            for batch in results["renewals"].values()
        ]),
        "Each batch: the buyers' first subscriptions through the services' own intake, the rest "
        "copied from them by the database; the shared clock then moves past their cycle end and "
        "the renewal job (its timer, each second, in every replica) is timed until all are "
        "renewed or the time bound passes. What a batch left is then taken out of the job's way. "
        "PostgreSQL is the bench's own server (its backends included) and the broker the whole "
        "RabbitMQ node; the machine's busy CPU seconds are every process's, out of the "
        "window's seconds times the cores.",
        "### Resident memory (MB, largest process of each service)",
        _table(("phase", *SERVICES), [
            (phase.replace("_", " "), *(values.get(name, "–") for name in SERVICES))
            for phase, values in results["memory_mb"].items()
        ]),
    ]
    return "\n\n".join(sections)


def profiles_section(results, runs, top=25):
    """The profiles a BENCH_PROFILE=1 run took (this one, else the newest kept run that
    took them): for each phase and process, the share of py-spy's samples in which each
    function was on the stack (idle time not sampled)."""
    profiled = next((run for run in [results, *reversed(runs)] if "profiles" in run), None)
    if profiled is None:
        return "No run took profiles (`BENCH_PROFILE=1 make bench` takes them)."
    sections = [] if profiled is results else [
        f"This run took none; these are those of `{profiled['label']}` ({profiled['generated_at']}), "
        "kept in docs/performance-runs/. Sampling costs the sampled processes some CPU, which is why "
        "a profiled run is not the one reported above."]
    for phase, processes in profiled["profiles"].items():
        for name, found in processes.items():
            sections.append(f"**{name}** during `{phase}` ({found['samples']} samples)")
            sections.append(_table(("% of samples", "function (file)"),
                                   [(percent, f"`{function}`") for percent, function in found["top"][:top]]))
    return "\n\n".join(sections)


def history_table(runs):
    """The key numbers of every kept run, one column per run, oldest first."""
    if not runs:
        return "No earlier runs are kept in docs/performance-runs/."
    names = [run["label"] for run in runs]
    rows = [[what] for what, *_ in targets(runs[-1])]
    for run in runs:
        by_name = {what: measured for what, measured, _, _ in targets(run)}
        for row in rows:
            row.append(by_name.get(row[0], "–"))
    rows.append(["load average of the machine when the run began"] + [run["machine"]["load_average"] for run in runs])
    return _table(["", *names], rows)


def render(results, runs, findings):
    quick = " (quick mode: smaller counts, shorter runs)" if results["quick"] else ""
    machine = results["machine"]
    return "\n\n".join([
        "# Performance",
        f"Measured by `make bench` on {results['generated_at']}{quick}: {machine['cpus']} cores, "
        f"Python {machine['python']}, load average {machine['load_average']} when the run began, "
        "every service on PostgreSQL, one process each unless a row says otherwise. "
        "This file and `docs/performance.json` are written by the run; every number below "
        "is one it measured. Ratios compare measurements made in the same run, since the "
        "machine is shared.",
        "## Targets",
        _table(("what", "measured", "target", "met"),
               [(what, measured, target, "yes" if met else "**no**") for what, measured, target, met in targets(results)]),
        "## Details",
        details(results),
        "## Changes, run by run",
        "Each column is a kept run (docs/performance-runs/), labelled by the state of the code it measured.",
        history_table(runs),
        findings.strip(),
        "## Profiles",
        profiles_section(results, runs),
        "## How to reproduce",
        "```sh\nmake bench                 # ≲ 10 minutes; writes docs/performance.json and docs/performance.md\n"
        "BENCH_QUICK=1 make bench   # a minute or two, smaller counts; writes var/bench/ instead\n"
        "BENCH_LABEL=03-my-change make bench   # also keeps the run in docs/performance-runs/\n"
        "BENCH_PROFILE=1 make bench # also samples the busy processes with py-spy (summaries below)\n"
        ".venv/bin/python -m bench.report   # renders this file again from docs/performance.json\n```",
        "The run starts its own system exactly as `make run DATABASE=postgresql` does, on free "
        "ports, in its own RabbitMQ vhost and with its own uniquely named PostgreSQL databases "
        "(dropped afterwards), so it never meets a running `make run` or a test run. "
        "Sizes and durations are in `results[\"settings\"]` of the JSON; the code is in `bench/`.",
    ]) + "\n"


def kept_runs(folder):
    return [json.loads(path.read_text()) for path in sorted(Path(folder).glob("*.json"))]


def write(results, out_dir, runs_dir, findings_path):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "performance.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    findings = Path(findings_path).read_text() if Path(findings_path).exists() else ""
    (out_dir / "performance.md").write_text(render(results, kept_runs(runs_dir), findings))


if __name__ == "__main__":
    # `python -m bench.report`: render docs/performance.md again from docs/performance.json
    # (after editing bench/findings.md), without measuring anything.
    root = Path(__file__).resolve().parents[1]
    write(json.loads((root / "docs" / "performance.json").read_text()), root / "docs",
          root / "docs" / "performance-runs", root / "bench" / "findings.md")
