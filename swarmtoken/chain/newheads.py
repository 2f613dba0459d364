"""New blocks pushed by the chain (``eth_subscribe`` to ``newHeads`` over a websocket), so a
waiting node wakes when a block arrives instead of asking for the block number dozens of
times a second: on two cores, eight nodes polling every 30 ms spend close to half a core.

anvil serves websockets on its HTTP port; a chain that does not (or a proxy in front of it)
refuses the connection, and the node falls back to polling (`active` stays False). The
subscription reconnects by itself after an outage, and polling covers the gap.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import urlsplit, urlunsplit

#: Seconds between reconnection attempts while the websocket is down.
RECONNECT_S = 1.0


def websocket_url(http_url: str) -> str | None:
    """The websocket URL of an HTTP JSON-RPC endpoint on the same host and port."""
    parts = urlsplit(http_url)
    if parts.scheme not in ("http", "https"):
        return None
    return urlunsplit(("ws" if parts.scheme == "http" else "wss", parts.netloc, parts.path, "", ""))


class NewHeads:
    """Counts the chain's new blocks as they are announced. `wait_beyond(n, timeout)`
    returns once more than ``n`` blocks have been announced (read `count` before looking at
    the chain, so a block that arrives while you look is not missed)."""

    def __init__(self, http_url: str) -> None:
        self.url = websocket_url(http_url)
        self.count = 0
        self.active = False
        self._changed = threading.Condition()
        self._stopped = threading.Event()
        self.refused = threading.Event()  # set when the chain offers no subscriptions: no more tries
        self._first_try = threading.Event()
        if self.url is not None:
            threading.Thread(target=self._run, name="new-heads", daemon=True).start()
            self._first_try.wait(timeout=2.0)  # so the first waits already use it

    def wait_beyond(self, seen: int, timeout: float) -> bool:
        """True once more than ``seen`` blocks were announced, False after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.count > seen, timeout=timeout)

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        from websockets.exceptions import InvalidHandshake, WebSocketException
        from websockets.sync.client import connect

        while not self._stopped.is_set() and not self.refused.is_set():
            try:
                with connect(self.url, open_timeout=2.0, close_timeout=0.5) as socket:
                    socket.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                            "params": ["newHeads"]}))
                    if "result" not in json.loads(socket.recv(timeout=2.0)):
                        self.refused.set()
                        break
                    self._set_active(True)
                    while not self._stopped.is_set():
                        try:
                            message = socket.recv(timeout=1.0)
                        except TimeoutError:
                            continue
                        if '"eth_subscription"' in message:
                            self._announce()
            except InvalidHandshake:  # an HTTP-only endpoint: the node polls instead
                self.refused.set()
            except (OSError, TimeoutError, WebSocketException, ValueError):
                pass
            self._set_active(False)
            self._first_try.set()
            self._stopped.wait(RECONNECT_S)
        self._first_try.set()

    def _set_active(self, active: bool) -> None:
        self.active = active
        self._first_try.set()
        if not active:
            self._announce()  # a waiter falls back to polling at once

    def _announce(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()
