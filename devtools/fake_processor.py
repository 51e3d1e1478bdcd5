"""What devtools' fake processors share: failures scripted for the next matching
requests, serving a fake in a thread (tests) and from the command line (`make run`)."""
import argparse
import logging
import re
import threading
from dataclasses import dataclass


@dataclass
class Script:
    """Make the next `times` requests matching `method` and `path` (a regex) fail with
    `status`; `after_work`: do the work first, then fail (a 5xx) or, for status
    "timeout", answer only after `delay` seconds (the client has given up by then)."""

    method: str
    path: str
    status: object
    times: int = 1
    after_work: bool = False
    delay: float = 0.0


class Scripts:
    """The failures scripted and not spent yet."""

    def __init__(self):
        self.pending = []
        self.lock = threading.Lock()

    def add(self, method, path, status, times=1, after_work=False, delay=0.0):
        with self.lock:
            self.pending.append(Script(method, path, status, times, after_work, delay))

    def take(self, method, path):
        """The script this request spends one of, or None."""
        with self.lock:
            for script in self.pending:
                if script.method == method and re.fullmatch(script.path, path):
                    script.times -= 1
                    if script.times <= 0:
                        self.pending.remove(script)
                    return script
        return None


class Running:
    """A fake's `server` (werkzeug's) serving in a thread until `stop()`: `.fake` its
    state, `.url` its base URL (`base_path` added)."""

    def __init__(self, server, base_path=""):
        self.server = server
        self.fake = server.app
        self.url = f"http://127.0.0.1:{server.server_port}{base_path}"
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def main(argv, name, description, serve, default_port, base_path=""):
    """Serve one fake on 127.0.0.1 until Ctrl-C (`make run`)."""
    parser = argparse.ArgumentParser(prog=name.lower().replace(" ", "_"), description=description)
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name}: %(message)s")
    server = serve(args.port)
    logging.getLogger(name).info("%s at http://127.0.0.1:%s%s", name, args.port, base_path)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C in `make run`
        pass
