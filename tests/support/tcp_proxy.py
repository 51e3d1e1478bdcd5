"""A loopback TCP proxy that a test can cut and restore, to take a broker away from
one client while everything else keeps its connection, or hold, to freeze a client
mid-conversation with its server."""
import socket
import threading


class TcpProxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._open = True
        # Cleared by `hold()`: what clients send waits in the proxy.
        self._flowing = threading.Event()
        self._flowing.set()
        self._connections = []
        # How many client connections it has passed on to the target, ever.
        self.opened = 0
        self._pumps = []
        self._lock = threading.Lock()
        self._running = True
        # Accept with a short timeout, so close() can end the thread before the socket
        # closes (a green thread still waiting on a closed fd trips eventlet later).
        self._listener.settimeout(0.1)
        self._acceptor = threading.Thread(target=self._accept_forever, daemon=True)
        self._acceptor.start()

    def cut(self):
        """Drop every connection and refuse new ones until `restore()`."""
        self._open = False
        with self._lock:
            for sock in self._connections:
                # Shut down, not closed: the thread reading it wakes up and closes it,
                # so no reader is left waiting on a descriptor the system reuses.
                _shut_down(sock)
            self._connections.clear()

    def restore(self):
        self._open = True

    def hold(self):
        """Keep every connection open but pass on nothing clients send, until
        `release()`: a client waits for its server's answer as long as the test wants.
        `cut()` before `release()` drops what was held instead of delivering it."""
        self._flowing.clear()

    def release(self):
        self._flowing.set()

    def close(self):
        self._running = False
        self._acceptor.join()
        self.cut()
        # Every reader gone before its descriptors are reused (by eventlet, a second
        # reader of one descriptor is an error).
        for pump in self._pumps:
            pump.join(timeout=5)
        _close(self._listener)

    def _accept_forever(self):
        while self._running:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            if not self._open:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)  # the 5 s were for connecting: a quiet link stays up
            pumps = [threading.Thread(target=_pump, args=(client, upstream, self._flowing), daemon=True),
                     threading.Thread(target=_pump, args=(upstream, client), daemon=True)]
            with self._lock:
                self._connections += [client, upstream]
                self._pumps += pumps
                self.opened += 1
            for pump in pumps:
                pump.start()


def _pump(source, destination, flowing=None):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            if flowing is not None:
                flowing.wait()
            destination.sendall(data)
    except (OSError, EOFError):  # eventlet raises EOFError for a socket closed under its reader
        pass
    finally:
        # Each socket is closed by its own reader only: shutting the other one down wakes
        # its pump, which then closes it. Closing a socket another green thread still
        # waits on leaves a listener on a descriptor the system hands out again.
        _shut_down(destination)
        _close(source)


def _shut_down(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(sock):
    _shut_down(sock)
    sock.close()
