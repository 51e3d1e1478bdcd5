"""Where a process spends its time under load: py-spy samples it from outside (no
change to the process), and `summary` turns the samples into the share of samples
in which each function was on the stack."""
import collections
import shutil
import signal
import subprocess
import sys
from pathlib import Path

# Longer than any phase: a sampling ends with `stop`.
MAX_SECONDS = 3600


def py_spy():
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("BENCH_PROFILE=1 needs py-spy (it is in requirements.lock: run `make bootstrap`)")
    return found


def start(pid, out_path, rate=50):
    """Sample `pid` in the background, into `out_path` (collapsed stacks), until `stop`."""
    return subprocess.Popen(
        [py_spy(), "record", "--pid", str(pid), "--duration", str(MAX_SECONDS), "--rate", str(rate),
         "--format", "raw", "--nonblocking", "--output", str(out_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def stop(sampler):
    """End a sampling started by `start`: like Ctrl-C, py-spy then writes what it has."""
    sampler.send_signal(signal.SIGINT)
    sampler.wait()


def _function(frame):
    """"name (path/to/file.py:12)" → "name (file.py)"."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


def summary(collapsed_text, top=25):
    """[(percent of samples, function)] of the functions most often on the stack."""
    on_stack = collections.Counter()
    total = 0
    for line in collapsed_text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        for function in {_function(frame) for frame in stack.split(";")}:
            on_stack[function] += int(count)
    return [(round(100 * count / total, 1), function) for function, count in on_stack.most_common(top)], total
