"""``snapdesk-worker --http``: /metrics for Prometheus, /healthz and /readyz for probes.

A small threaded HTTP server on a daemon thread. It only reads what the worker's main loop
keeps up to date (never the transport itself), so an answer takes no time even while Redis is
away, and a scrape cannot slow a job down.

* ``/metrics``: the Prometheus text format (OpenMetrics when the scraper asks for it).
* ``/healthz``: 200 while the worker's main loop comes round; 503 when it has not for
  ``--stuck-after`` seconds (the process is stuck: restart it).
* ``/readyz``: 200 when the worker takes jobs: the transport answered its last call, it is not
  draining (stopping, or leaving to be recycled), and not every queue it serves is paused; 503
  otherwise. The body says why, in one line.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("snapdesk.worker")

DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise


def parse_address(value: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); a bare port is on loopback."""
    value = value.strip()
    host, port = DEFAULT_HOST, value
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            raise ValueError(f"{value!r}: write an IPv6 address as [ADDRESS]:PORT")
    elif ":" in value:
        host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: expected PORT or HOST:PORT, with a port from 0 to 65535")
    return host or DEFAULT_HOST, int(port)


def listen(address: tuple[str, int]) -> socket.socket:
    """A listening socket on ``address`` (a child worker process may inherit it)."""
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=64)
    log.info("serving /metrics, /healthz and /readyz on %s", url_of(sock))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    server_version = "snapdesk-worker"
    worker = None  # set on a subclass by serve()
    metrics = None

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                body, content_type = self.metrics.render(self.headers.get("Accept", ""))
                self._answer(200, body, content_type)
            elif path in ("/healthz", "/readyz"):
                ok, why = self.worker.liveness() if path == "/healthz" else self.worker.readiness()
                self._answer(200 if ok else 503, (why + "\n").encode())
            elif path == "/":
                self._answer(200, b"snapdesk-worker: /metrics /healthz /readyz\n")
            else:
                self._answer(404, b"not found: try /metrics, /healthz or /readyz\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away
        except Exception:  # a bug here must not take the server down with it
            log.exception("answering %s failed", path)
            try:
                self._answer(500, b"internal error; see the worker's log\n")
            except OSError:
                pass

    def do_HEAD(self):  # noqa: N802
        self.do_GET()

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):  # every scrape is not worth a line in the worker's log
        log.debug("http: %s - %s", self.address_string(), format % args)


def serve(sock: socket.socket, worker, metrics) -> ThreadingHTTPServer:
    """Answer on ``sock`` (already listening) from a daemon thread; ``shutdown()`` stops it."""
    handler = type("Handler", (_Handler,), {"worker": worker, "metrics": metrics})
    server = _Server(sock.getsockname()[:2], handler, bind_and_activate=False)
    server.socket.close()  # the one made by the constructor; ours is bound and listening already
    server.socket = sock
    server.server_address = sock.getsockname()[:2]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="http", daemon=True).start()
    return server
