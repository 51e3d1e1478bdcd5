"""Summaries of measured samples: the numbers every table of the report shows."""
import math


def percentile(samples, fraction):
    """The nearest-rank percentile (`fraction` in 0..1) of `samples`: a value that was
    measured, never one interpolated between two."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be within 0..1")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds):
    """Count, p50, p99 and max of durations given in seconds, in milliseconds (None
    when nothing was measured: every request failed)."""
    if not seconds:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 3),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 3),
        "max_ms": round(max(seconds) * 1000, 3),
    }


def ratio(numerator, denominator):
    return round(numerator / denominator, 3) if denominator else None
