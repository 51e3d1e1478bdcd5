"""nameko extensions auth needs: work done after the answer."""
from functools import partial

from nameko.extensions import DependencyProvider


class Background(DependencyProvider):
    """`self.background(fn, *args)` runs `fn` in a greenthread the container manages, so
    the caller's answer does not wait for it. `fn` must catch its own errors (an uncaught
    one stops the container) and bound its own waits; stopping the service lets what is
    still running finish."""

    def setup(self):
        self.running = set()

    def get_dependency(self, worker_ctx):
        return self.spawn

    def spawn(self, fn, *args):
        thread = self.container.spawn_managed_thread(partial(fn, *args))
        self.running.add(thread)
        thread.link(self.running.discard)

    def stop(self):
        for thread in list(self.running):
            thread.wait()
