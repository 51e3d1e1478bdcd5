"""A loopback TCP proxy that a test can cut and restore, to take a broker away from
one client while everything else keeps its connection."""
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
        self._connections = []
        self._lock = threading.Lock()
        self._running = True
        threading.Thread(target=self._accept_forever, daemon=True).start()

    def cut(self):
        """Drop every connection and refuse new ones until `restore()`."""
        self._open = False
        with self._lock:
            for sock in self._connections:
                _close(sock)
            self._connections.clear()

    def restore(self):
        self._open = True

    def close(self):
        self._running = False
        self.cut()
        _close(self._listener)

    def _accept_forever(self):
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._connections += [client, upstream]
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()


def _pump(source, destination):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            destination.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(destination)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
