"""Resident memory (RSS) and CPU time of the system's processes, read from /proc."""
import os
from pathlib import Path

import eventlet

SERVICE_MODULES = {
    "gateway": "gateway.service",
    "auth": "services.auth.service",
    "subscriptions": "services.subscriptions.service",
    "billing": "services.billing.service",
    "notifications": "services.notifications.service",
}


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise LookupError(f"process {pid} has no VmRSS")


TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """/proc/<pid>/stat after the command name: [state, ppid, ...] (field 3 on of proc(5))."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pids):
    """CPU time (user + system) the processes `pids` have used so far."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / TICKS_PER_SECOND


def tree_cpu_seconds(root):
    """CPU time of `root` and every process below it, with that of the children they
    have already reaped: a server's whole cost (PostgreSQL forks a backend per
    connection, and a backend that exits is counted by the parent that waited on it)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(_stat(entry)[1])
            except (OSError, IndexError):
                pass  # exited meanwhile
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier += children
    total = 0
    for pid in tree:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        # utime, stime, cutime, cstime (fields 14-17 of proc(5))
        total += sum(int(value) for value in fields[11:15])
    return total / TICKS_PER_SECOND


def pids_named(command):
    """The processes whose command name is `command` (e.g. RabbitMQ's `beam.smp`)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == command:
                found.append(int(entry))
        except OSError:
            pass
    return found


def machine_busy_seconds():
    """CPU seconds the whole machine has been busy (not idle, not waiting on the disk),
    summed over its cores, from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks[:8]) - idle - iowait) / TICKS_PER_SECOND


def service_pids(system):
    """{process name: [pid, ...]} of every service process of a RunningSystem."""
    return {name: system.pids_of(module) for name, module in SERVICE_MODULES.items()}


def snapshot(pids):
    """The largest RSS (MB) among each service's processes now."""
    return {name: max(rss_mb(pid) for pid in found) for name, found in pids.items() if found}


class PeakSampler:
    """Samples the RSS of `pids` every `interval` seconds in a green thread; `peak` is
    the largest value each service reached while it ran."""

    def __init__(self, pids, interval=0.5):
        self.pids, self.interval = pids, interval
        self.peak = {}
        self._thread = None

    def _sample(self):
        while True:
            for name, value in snapshot(self.pids).items():
                self.peak[name] = max(value, self.peak.get(name, 0))
            eventlet.sleep(self.interval)

    def __enter__(self):
        self._thread = eventlet.spawn(self._sample)
        return self

    def __exit__(self, *exc):
        self._thread.kill()
        for name, value in snapshot(self.pids).items():
            self.peak[name] = max(value, self.peak.get(name, 0))
