"""A lean keep-alive HTTP client for the load generators: the client's own cost is
paid on the same two cores as the system it measures, so it should be small."""
import http.client
import queue


class KeepAlivePool:
    """Reusable connections to one host; `get` raises unless the answer is 200."""

    def __init__(self, host, port, headers=None, timeout=10):
        self.host, self.port, self.timeout = host, port, timeout
        self.headers = headers or {}
        self._idle = queue.LifoQueue()

    def get(self, path):
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("GET", path, headers=self.headers)
            answer = connection.getresponse()
            body = answer.read()
        except BaseException:  # eventlet.Timeout too: a connection cut mid-answer is not reused
            connection.close()
            raise
        if answer.will_close:
            connection.close()
        else:
            self._idle.put(connection)
        if answer.status != 200:
            raise RuntimeError(f"GET {path} answered {answer.status}: {body[:200]!r}")
        return body

    def close(self):
        while not self._idle.empty():
            self._idle.get_nowait().close()
