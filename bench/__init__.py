"""`make bench`: the portal measured against its own limits (see docs/performance.md)."""
