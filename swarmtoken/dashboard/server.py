"""The dashboard's web server (aiohttp, already pinned as a dependency of web3): one page,
its static script and style from this package, and the state as JSON.

Routes:
  GET /               the page, with the current state embedded (it renders before `load`)
  GET /api/state      the state as JSON
  GET /api/events     server-sent events: the state each time a new block changes it
  GET /ledger.csv     the ledger, one row per epoch and participant (`swarm ledger --csv`)
  GET /membership.csv the membership changes (`swarm ledger --membership --csv`)
  GET /static/<file>  app.js, style.css

One poller reads the chain every ``interval`` seconds (in a worker thread: the reads
block) and wakes every event stream when the block moves, so any number of open pages
cost the chain one read a second.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

STATIC = Path(__file__).with_name("static")


class Source(Protocol):
    def state(self) -> dict[str, Any]: ...


def _embed(state: dict[str, Any] | None) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(state).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class Dashboard:
    def __init__(self, source: Source, host: str = "127.0.0.1", port: int = 8600, interval: float = 1.0) -> None:
        self.source = source
        self.host, self.port, self.interval = host, port, interval
        self.state: dict[str, Any] | None = None
        self.error: str | None = None
        self.version = 0
        self._changed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    # ------------------------------------------------------------------ reading
    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            state = await loop.run_in_executor(None, self.source.state)
            self.error = None
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            return
        if state is not self.state:
            key = lambda s: None if s is None else (s.get("block"), s.get("chain_error"))  # noqa: E731
            changed = key(state) != key(self.state)
            self.state = state
            if changed:
                self.version += 1
                async with self._changed:
                    self._changed.notify_all()

    async def _poll(self) -> None:
        while True:
            await self._read()
            await asyncio.sleep(self.interval)

    # ------------------------------------------------------------------ routes
    async def index(self, request: web.Request) -> web.Response:
        if self.state is None:
            await self._read()
        page = (STATIC / "index.html").read_text().replace("__STATE__", _embed(self.state))
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def api_state(self, request: web.Request) -> web.Response:
        if self.state is None:
            await self._read()
        if self.state is None:
            return web.json_response({"error": self.error or "no state yet"}, status=503)
        return web.json_response(self.state, headers={"Cache-Control": "no-store"})

    async def api_events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        seen = -1
        try:
            while True:
                if self.state is not None and self.version != seen:
                    seen = self.version
                    await response.write(f"data: {json.dumps(self.state)}\n\n".encode())
                async with self._changed:
                    try:
                        await asyncio.wait_for(self._changed.wait(), timeout=15)
                    except asyncio.TimeoutError:
                        await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def ledger_csv(self, request: web.Request) -> web.Response:
        from ..cli.views import MEMBERSHIP_FIELDS

        if self.state is None:
            await self._read()
        membership = request.path.startswith("/membership")
        rows = (self.state or {}).get("membership" if membership else "ledger", [])
        if membership:
            fields = list(MEMBERSHIP_FIELDS)
        else:  # the columns of `swarm ledger --csv`
            fields = [k for k in rows[0] if k != "label"] if rows else ["epoch"]
        name = "membership.csv" if membership else "ledger.csv"
        return web.Response(text=_csv(rows, fields), content_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}"',
                                     "Cache-Control": "no-store"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_get("/api/state", self.api_state)
        app.router.add_get("/api/events", self.api_events)
        app.router.add_get("/ledger.csv", self.ledger_csv)
        app.router.add_get("/membership.csv", self.ledger_csv)
        app.router.add_static("/static/", STATIC)
        return app

    # ------------------------------------------------------------------ running
    async def _serve(self, ready: threading.Event | None = None) -> None:
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=1.0,
                                     access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]
        poller = asyncio.create_task(self._poll())
        if ready is not None:
            ready.set()
        try:
            await self._stopping.wait()
        finally:
            poller.cancel()
            await self._runner.cleanup()

    def run(self) -> None:
        """Serve in the foreground until Ctrl-C."""
        try:
            asyncio.run(self._serve())
        except KeyboardInterrupt:
            pass

    def start(self) -> str:
        """Serve from a daemon thread; returns the page's URL once it listens."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                errors.append(exc)
                ready.set()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=main, name="swarm-dashboard", daemon=True)
        self._thread.start()
        ready.wait(timeout=30)
        if errors:
            raise errors[0]
        return self.url

    def hold(self) -> None:
        """Block until Ctrl-C (or SIGTERM), then stop serving."""
        import signal
        import time

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        # both, explicitly: a process started in the background may have inherited SIGINT ignored
        signals = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
        previous = {sig: signal.signal(sig, interrupt) for sig in signals}
        try:
            while self._thread is not None and self._thread.is_alive():
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=10)


def open_in_browser(url: str) -> bool:
    """Open ``url`` in the desktop's browser, only where there is a desktop (a headless
    machine, CI or a test gets the printed URL only)."""
    import os
    import webbrowser

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or os.environ.get("CI"):
        return False
    try:
        return webbrowser.open(url, new=2)
    except Exception:
        return False
