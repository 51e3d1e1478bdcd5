"""Resident memory (RSS) and CPU time of the system's processes, read from /proc."""
import os

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


def cpu_seconds(pids):
    """CPU time (user + system) the processes `pids` have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / ticks


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
