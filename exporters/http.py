"""The agent's HTTP endpoints: /metrics, /healthz, /readyz (and routes others add).

Handlers only read the agent's state; no request can run SQL or read a file.
TLS and basic auth come from a ``--web.config.file`` (see webconfig.py).
A route is a function (query parameters) -> (status, content type, body),
registered by name, so features add endpoints without touching the server.

Encoding a series costs microseconds in Python, and a fleet has hundreds of
thousands, so once ``render_in_background`` is wired to "the state changed"
(``pgradar run`` calls it after every scheduled job), /metrics serves the body
rendered after the latest change and a scrape costs a copy of bytes; a
``PartedRegistry`` encodes again only the targets' sections that changed
(docs/fleet.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from pgradar.exporters.prometheus import PartedRegistry
from pgradar.exporters.webconfig import BasicAuth, WebConfig, ssl_context

log = logging.getLogger("pgradar.http")


def render(registry: CollectorRegistry, encoder: Callable[[CollectorRegistry], bytes], content_type: str) -> bytes:
    """The exposition; a ``PartedRegistry`` reuses the text of the parts that did not change."""
    if isinstance(registry, PartedRegistry):
        return registry.render(encoder, content_type)
    return encoder(registry)


Response = tuple[int, str, bytes]
# Liveness and readiness answer without credentials, so that probes need no secret.
UNAUTHENTICATED = frozenset({"/healthz", "/readyz"})
Route = Callable[[dict[str, list[str]], str], Response]  # (query, Accept header) -> response
Encoder = Callable[[CollectorRegistry], bytes]


class Exposition:
    """The /metrics body per format, rendered again in a thread of its own when told the state changed.

    A format is rendered on the scrape path only the first time it is asked
    for; afterwards a scrape gets the body of the latest render, which starts
    ``settle_s`` after a change so that jobs finishing close together cost one
    render, and no sooner than ``every_s`` after the previous render started:
    the load sampler changes the state every second, and following it cost
    15 renders a minute where a scrape every 15 s reads 4. /metrics lags a
    poll by at most ``every_s`` plus a render. Each job runs at a phase of
    its own within its interval (``runtime.agent.first_run_offset``); a render
    re-encodes only the sections whose version moved (``PartedRegistry``).
    """

    def __init__(self, registry: CollectorRegistry, settle_s: float = 3.0, every_s: float = 10.0) -> None:
        self.registry = registry
        self.settle_s = settle_s
        self.every_s = every_s
        self.renders = 0
        self._last_render = -every_s
        self._bodies: dict[str, bytes] = {}
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pgradar-render", daemon=True)
        self._thread.start()

    def body(self, accept: str) -> tuple[str, bytes]:
        encoder, content_type = choose_encoder(accept)
        with self._lock:
            body = self._bodies.get(content_type)
        if body is None:
            body = self._render(content_type, encoder)
        return content_type, body

    def changed(self, *_: object) -> None:
        self._changed.set()

    def _render(self, content_type: str, encoder: Encoder) -> bytes:
        body = render(self.registry, encoder, content_type)
        with self._lock:
            self._bodies[content_type] = body
            self._encoders[content_type] = encoder
            self.renders += 1
        return body

    def _loop(self) -> None:
        while True:
            self._changed.wait()
            wait_s = max(self.settle_s, self._last_render + self.every_s - time.monotonic())
            # settle on an event, not in time.sleep: stop() ends it at once, and a profiler sees a wait
            if self._stopping.is_set() or self._stopping.wait(wait_s):
                return
            self._changed.clear()
            self._last_render = time.monotonic()
            with self._lock:
                formats = list(self._encoders.items())
            for content_type, encoder in formats:
                try:
                    self._render(content_type, encoder)
                except Exception:  # the next change renders again; scrapes keep the last good body
                    log.exception("rendering /metrics failed")

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that speaks plain HTTP to TLS, or hangs up, is not worth a traceback.
        log.debug("request from %s failed", client_address, exc_info=True)


class AgentHTTPServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        healthy: Callable[[], bool],
        ready: Callable[[], tuple[bool, str]],
        web: WebConfig | None = None,
    ) -> None:
        self.routes: dict[str, Route] = {}
        self.auth = BasicAuth(web.users) if web is not None and web.auth_required else None
        self.registry = registry
        self.exposition: Exposition | None = None
        self.routes["/metrics"] = self._metrics
        self.routes["/healthz"] = lambda q, a: (
            (200, "text/plain", b"ok\n") if healthy() else (503, "text/plain", b"scheduler stopped\n")
        )
        self.routes["/readyz"] = self._ready_route(ready)
        handler = self._handler()
        self.httpd = _Server((host, port), handler)
        if web is not None and web.tls is not None:
            # The handshake happens in the request's own thread (on first read),
            # so a slow or silent client cannot hold up the accept loop.
            self.httpd.socket = ssl_context(web.tls).wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def render_in_background(self) -> Callable[..., None]:
        """Serve /metrics from bodies rendered off the scrape path; call the result when the state changed."""
        if self.exposition is None:
            self.exposition = Exposition(self.registry)
        return self.exposition.changed

    def _metrics(self, query: dict[str, list[str]], accept: str) -> Response:
        if self.exposition is not None:
            content_type, body = self.exposition.body(accept)
            return 200, content_type, body
        encoder, content_type = choose_encoder(accept)
        return 200, content_type, render(self.registry, encoder, content_type)

    @staticmethod
    def _ready_route(ready: Callable[[], tuple[bool, str]]) -> Route:
        def route(query: dict[str, list[str]], accept: str) -> Response:
            ok, why = ready()
            return (200 if ok else 503), "text/plain", (why + "\n").encode()

        return route

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "pgradar"
            sys_version = ""
            timeout = 30  # seconds a client may take to send its request

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if (
                    server.auth is not None
                    and parts.path not in UNAUTHENTICATED
                    and not server.auth.allows(self.headers.get("Authorization"))
                ):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="pgradar"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route = server.routes.get(parts.path)
                if route is None:
                    self._send(404, "text/plain", b"not found; try /, /metrics, /problems, /healthz, /readyz\n")
                    return
                try:
                    status, content_type, body = route(parse_qs(parts.query), self.headers.get("Accept", ""))
                except Exception:
                    log.exception("handler for %s failed", parts.path)
                    status, content_type, body = 500, "text/plain", b"internal error\n"
                self._send(status, content_type, body)

            def do_HEAD(self) -> None:
                self.do_GET()

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("%s " + format, self.address_string(), *args)

        return Handler

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="pgradar-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self.exposition is not None:
            self.exposition.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
