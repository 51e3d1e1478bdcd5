from datetime import datetime, timedelta, timezone

import pytest

from services.common import clock


def test_real_clock_is_utc_and_aware(monkeypatch):
    monkeypatch.delenv("CLOCK_FILE", raising=False)
    now = clock.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_frozen_time_is_shared_through_the_file(tmp_path, monkeypatch):
    path = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(path))
    frozen = datetime(2026, 11, 26, 12, 0, tzinfo=timezone(timedelta(hours=-3)))
    clock.write_clock_file(path, frozen_at=frozen)
    assert clock.now() == frozen
    assert clock.now().tzinfo == timezone.utc

    later = frozen + timedelta(minutes=10, seconds=1)
    clock.write_clock_file(path, frozen_at=later)
    assert clock.now() == later


def test_offset_moves_the_real_clock(tmp_path, monkeypatch):
    path = tmp_path / "clock.json"
    monkeypatch.setenv("CLOCK_FILE", str(path))
    clock.write_clock_file(path, offset_seconds=3 * 86400)
    shifted = clock.now() - datetime.now(timezone.utc)
    assert timedelta(days=3) - timedelta(seconds=5) < shifted <= timedelta(days=3)


def test_missing_file_means_real_time(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOCK_FILE", str(tmp_path / "absent.json"))
    assert abs(clock.now() - datetime.now(timezone.utc)) < timedelta(seconds=5)


def test_naive_times_are_refused(tmp_path):
    with pytest.raises(ValueError):
        clock.write_clock_file(tmp_path / "c.json", frozen_at=datetime(2026, 1, 1))
