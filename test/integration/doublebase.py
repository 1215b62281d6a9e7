"""What every test double's HTTP server shares: a threaded server that knows its open
connections (so set_down() can break keep-alive ones, as a server that went away would) and a
quiet handler that registers each connection and hands every request to the double's
_dispatch(handler). Each double subclasses both for its own names and extras."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TrackedServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, double, handler):
        self.double = double
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def drop_connections(self):
        """Break every open (keep-alive) connection."""
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class TrackedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        with self.server.conns_lock:
            self.server.conns.add(self.connection)

    def finish(self):
        with self.server.conns_lock:
            self.server.conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _handle(self):
        self.server.double._dispatch(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle
