"""Serve a node's released parameter files to its peers over HTTP.

Two routes, ``GET /params/<sha256>`` and ``GET /commits/<commitment>`` (the file the
commitment opens, see `commitments`), with the same answers:

=========================  ====================================================
200                        the file, ``Content-Length`` set, streamed from disk
400                        the hash is not 64 lowercase hex characters
403                        the file exists but is not released yet (commit phase)
404                        any other path, or no file with this hash
=========================  ====================================================

Every refusal has a one-line plain-text body saying why. The server does not check
hashes itself: what a peer committed is checked by whoever downloads it.
Logging goes to this module's logger at DEBUG, never to stderr.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .commitments import COMMIT_ROUTE
from .files import ParameterStore
from .hashing import is_sha256_hex

log = logging.getLogger(__name__)

ROUTE = "/params/"
_STOP_POLL_S = 0.05  # how soon `stop` takes effect; the idle cost is 20 wake-ups a second


class ParameterServer:
    """A `ThreadingHTTPServer` over one `ParameterStore`, run in a daemon thread.

    Binds loopback by default; ``port=0`` lets the OS pick a free port (read it
    back from `port`). ``public_url`` is the base URL peers should use when it
    differs from the bound address (a TLS proxy in front, another host name).
    ``on_served(path)`` is called, in the serving thread, after each file was sent
    in full (a count of downloads; a rogue test node withdraws files with it).

    Example::

        with ParameterServer(store) as server:
            uri = server.url_for(stored.sha256)   # commit this on chain
    """

    def __init__(
        self,
        store: ParameterStore,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        public_url: str | None = None,
        request_timeout: float = 30.0,
        on_served: Callable[[str], None] | None = None,
    ) -> None:
        handler = type("Handler", (_Handler,), {"store": store, "timeout": request_timeout,
                                                "on_served": staticmethod(on_served or _ignore)})
        self._httpd = _QuietServer((host, port), handler)
        self.host, self.port = self._httpd.server_address[:2]
        self.base_url = (public_url or f"http://{self.host}:{self.port}").rstrip("/")
        self._thread: threading.Thread | None = None

    def url_for(self, sha256: str) -> str:
        """The URL peers download this file from: the ``uri`` committed on chain."""
        return f"{self.base_url}{ROUTE}{sha256}"

    def start(self) -> ParameterServer:
        """Serve in a background daemon thread, so a crashing node never hangs on it."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _STOP_POLL_S},
            name=f"params:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and close the socket (idempotent)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ParameterServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # A peer that hangs up mid-body (its size limit, its timeout) is routine.
        log.debug("request from %s failed", client_address, exc_info=True)


def _ignore(path: str) -> None:
    pass


class _Handler(BaseHTTPRequestHandler):
    store: ParameterStore
    on_served: Callable[[str], None]
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith(COMMIT_ROUTE):
            commitment = self.path[len(COMMIT_ROUTE) :]
            if not is_sha256_hex(commitment):
                return self._refuse(HTTPStatus.BAD_REQUEST, f"{commitment!r} is not a commitment (64 lowercase hex characters)")
            sha = self.store.opened_by(commitment)
            if sha is None:
                return self._refuse(HTTPStatus.NOT_FOUND, f"no file committed as {commitment}")
        elif self.path.startswith(ROUTE):
            sha = self.path[len(ROUTE) :]
        else:
            return self._refuse(HTTPStatus.NOT_FOUND,
                                f"no route {self.path!r}; files are at {ROUTE}<sha256> and {COMMIT_ROUTE}<commitment>")
        if not is_sha256_hex(sha):
            return self._refuse(HTTPStatus.BAD_REQUEST, f"{sha!r} is not a sha256 (64 lowercase hex characters)")
        if not self.store.is_released(sha):
            if self.store.has(sha):
                return self._refuse(
                    HTTPStatus.FORBIDDEN, f"{sha} is committed but not released: served once the commit window closes"
                )
            return self._refuse(HTTPStatus.NOT_FOUND, f"no parameter file {sha}")
        try:
            handle = self.store.path_for(sha).open("rb")
        except FileNotFoundError:
            return self._refuse(HTTPStatus.NOT_FOUND, f"no parameter file {sha}")
        with handle:
            size = handle.seek(0, 2)
            handle.seek(0)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("ETag", f'"{sha}"')
            self.end_headers()
            shutil.copyfileobj(handle, self.wfile)
        self.wfile.flush()
        self.on_served(self.path)

    def _refuse(self, status: HTTPStatus, reason: str) -> None:
        body = (reason + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)
