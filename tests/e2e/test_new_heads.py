"""Block announcements over anvil's websocket: a waiting node wakes on a new block, falls
back to polling where the chain offers no subscriptions, and resubscribes after an outage."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from threading import Thread

from web3 import Web3

from swarmtoken.chain.localchain import start, stop_pid
from swarmtoken.chain.newheads import NewHeads, websocket_url
from swarmtoken.cli.demo import free_port
from tests.e2e.steps import wait


def test_websocket_url_of_an_endpoint():
    assert websocket_url("http://127.0.0.1:8545") == "ws://127.0.0.1:8545"
    assert websocket_url("https://rpc.example.org/v1/key") == "wss://rpc.example.org/v1/key"
    assert websocket_url("/tmp/geth.ipc") is None


def test_a_new_block_ends_the_wait_and_an_outage_is_ridden_out():
    port = free_port()
    process = start(port)
    heads = NewHeads(f"http://127.0.0.1:{port}")
    try:
        assert heads.active
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        seen = heads.count
        assert not heads.wait_beyond(seen, timeout=0.3)  # no block, no wake-up
        sent = time.monotonic()
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        assert heads.wait_beyond(seen, timeout=5) and time.monotonic() - sent < 1.0

        stop_pid(process.pid)
        wait(lambda: not heads.active, "the subscription to drop", timeout=10)
        process = start(port)
        wait(lambda: heads.active, "the subscription to come back", timeout=10)
        seen = heads.count
        Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}")).eth.send_transaction(
            {"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        assert heads.wait_beyond(seen, timeout=5)
    finally:
        heads.stop()
        stop_pid(process.pid)


def test_an_endpoint_without_websockets_leaves_the_node_polling():
    class JsonRpcOverHttpOnly(BaseHTTPRequestHandler):
        def do_GET(self):  # a websocket upgrade is a GET; a plain JSON-RPC server refuses it
            self.send_error(405)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), JsonRpcOverHttpOnly)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        heads = NewHeads(f"http://127.0.0.1:{server.server_port}")
        time.sleep(0.5)
        assert not heads.active and heads.refused.is_set()
        heads.stop()
    finally:
        server.shutdown()
