"""A nameko timer whose interval comes from the config, not from the code."""
from nameko.timer import Timer


class ConfiguredTimer(Timer):
    """`@timer("RECONCILE_INTERVAL", default=30)`: fires every that many seconds.

    nameko's timer takes its interval when the class is defined; this one reads it
    from the container's config when the service starts, so tests and deployments
    set it like any other key.
    """

    def __init__(self, interval_key, default, **kwargs):
        super().__init__(interval=default, **kwargs)
        self.interval_key = interval_key

    def setup(self):
        self.interval = float(self.container.config.get(self.interval_key, self.interval))
        super().setup()


timer = ConfiguredTimer.decorator
