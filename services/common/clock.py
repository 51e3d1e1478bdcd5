"""The one source of "now" for every process.

Production reads the system clock. Tests point `CLOCK_FILE` (config and environment)
at a JSON file, `{"frozen_at": ISO-8601}` or `{"offset_seconds": N}`, and every
process that shares the file sees the same time; the file is re-read when it changes.
"""
import json
import os
from datetime import datetime, timedelta, timezone

_cache = {"key": None, "setting": {}}


def _clock_file():
    return os.environ.get("CLOCK_FILE") or None


def _setting(path):
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return {}
    key = (path, stat.st_mtime_ns, stat.st_size)
    if _cache["key"] != key:
        with open(path) as handle:
            text = handle.read().strip()
        _cache["setting"] = json.loads(text) if text else {}
        _cache["key"] = key
    return _cache["setting"]


def now():
    """Timezone-aware UTC now, as the shared clock file says (or the system clock)."""
    real = datetime.now(timezone.utc)
    path = _clock_file()
    if not path:
        return real
    setting = _setting(path)
    if "frozen_at" in setting:
        return datetime.fromisoformat(setting["frozen_at"]).astimezone(timezone.utc)
    return real + timedelta(seconds=setting.get("offset_seconds", 0))


def write_clock_file(path, frozen_at=None, offset_seconds=None):
    """Set the time every process sharing `path` sees (for tests and demos)."""
    if frozen_at is not None:
        if frozen_at.tzinfo is None:
            raise ValueError("frozen_at must be timezone-aware")
        setting = {"frozen_at": frozen_at.astimezone(timezone.utc).isoformat()}
    else:
        setting = {"offset_seconds": offset_seconds or 0}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(setting, handle)
    os.replace(tmp, path)
