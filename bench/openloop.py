"""An open-loop load generator: requests leave on a fixed schedule, whether or not the
earlier ones have been answered, and each latency is measured from the moment its
request was *scheduled*. A closed loop (send, wait, send) slows down with the system
it measures and hides its queueing ("coordinated omission"); this one does not."""
import time

import eventlet


def schedule(rate, duration):
    """Offsets in seconds, from the start, at which the requests are due: `rate` a second
    for `duration` seconds, evenly spaced."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    return [index / rate for index in range(int(rate * duration))]


def latencies_from(due_offsets, finished_offsets):
    """Each request's latency from its scheduled moment (not from when it was sent)."""
    return [finished - due for due, finished in zip(due_offsets, finished_offsets, strict=True)]


def run_open_loop(send, rate, duration, timeout, concurrency=1000):
    """Call `send()` on schedule in green threads; (latencies in seconds, failures).

    A request not answered within `timeout` counts as a failure, never as a latency,
    and the run ends at most `timeout` seconds after the last request was due.
    """
    due = schedule(rate, duration)
    pool = eventlet.GreenPool(concurrency)
    finished = [None] * len(due)
    failures = []
    start = time.perf_counter()

    def one(index):
        try:
            with eventlet.Timeout(timeout):
                send()
            finished[index] = time.perf_counter() - start
        except (Exception, eventlet.Timeout) as error:  # noqa: B902 - a failure is data here
            failures.append(repr(error))

    for index, offset in enumerate(due):
        delay = start + offset - time.perf_counter()
        if delay > 0:
            eventlet.sleep(delay)
        pool.spawn_n(one, index)
    pool.waitall()
    answered = [(offset, end) for offset, end in zip(due, finished) if end is not None]
    return latencies_from([offset for offset, _ in answered], [end for _, end in answered]), failures


def run_closed_loop(send, clients, duration):
    """`clients` green threads sending back to back for `duration` seconds: answers
    per second (the maximum throughput) and failures."""
    done = []
    failures = []
    stop_at = time.perf_counter() + duration

    def client():
        while time.perf_counter() < stop_at:
            try:
                send()
                done.append(1)
            except Exception as error:  # noqa: B902 - a failure is data here
                failures.append(repr(error))

    start = time.perf_counter()
    pool = eventlet.GreenPool(clients)
    for _ in range(clients):
        pool.spawn_n(client)
    pool.waitall()
    return len(done) / (time.perf_counter() - start), failures
