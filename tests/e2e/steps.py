"""Steps the end-to-end scenarios share: waiting for the chain, pausing and resuming node
processes, electing by hand between the last commitment and the merge."""

from __future__ import annotations

import signal
import time

from swarmtoken.chain.epochview import PHASES, read_epoch

TIMEOUT_S = 240


def wait(condition, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def phase(swarm, epoch):
    return PHASES[int(swarm.epochState(epoch)["phase"])]


def signal_alive(env, sig, nodes=None):
    for node in nodes if nodes is not None else env.nodes:
        if node.alive():
            node.process.send_signal(sig)


def pause_when_all_committed(env, epoch, expected):
    swarm = env.handles.swarm
    wait(lambda: int(swarm.currentEpoch()) == epoch, f"epoch {epoch}")
    wait(lambda: int(swarm.epochState(epoch)["commitCount"]) >= expected, f"{expected} commitments in epoch {epoch}")
    signal_alive(env, signal.SIGSTOP)


def elect_now(env, epoch):
    from brownie import accounts

    swarm = env.handles.swarm
    wait(lambda: time.time() > int(swarm.epochState(epoch)["deadline"]) + 1, "the commit window")
    swarm.electLeader(epoch, {"from": accounts[0]}, silent=True)
    swarm.drawLeader(epoch, {"from": accounts[0]}, silent=True)
    return swarm.leaderOf(epoch)


def node_of(env, address):
    return next(n for n in env.nodes if n.address == address)


def settled(env, epoch):
    swarm = env.handles.swarm
    wait(lambda: int(swarm.currentEpoch()) > epoch or bool(swarm.finished()), f"settlement of epoch {epoch}")
    return read_epoch(swarm, epoch, int(env.handles.record["block"]))
