"""The training-loop callback against the in-process swarm, driven by a user-written loop."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from trainer.callback import (InProcessSwarm, SwarmBackend, SwarmCallback, SwarmProtocolError,
                              SwarmTimeoutError)
from trainer.merges import merge
from trainer.models import build_model
from trainer.params import NonFiniteError
from trainer.training import evaluate


def _run_threads(targets) -> list[BaseException | None]:
    """Run one thread per target; return the exception each raised (or None)."""
    errors: list[BaseException | None] = [None] * len(targets)

    def wrap(k, fn):
        try:
            fn()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            errors[k] = error

    threads = [threading.Thread(target=wrap, args=(k, fn)) for k, fn in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def test_user_loop_with_callback_converges_to_one_shared_model(wine_split):
    nodes = wine_split.nodes[:3]
    swarm = InProcessSwarm(3, build_model("mlp", 13, 3, seed=0, hidden=(8,)).state_dict(), seed=1)
    models = [build_model("mlp", 13, 3, seed=0, hidden=(8,)) for _ in nodes]

    def user_loop(k: int) -> None:
        # A plain torch loop the user wrote: own optimiser, own batching.
        model, data = models[k], nodes[k]
        callback = SwarmCallback(swarm.node(k), n_samples=data.n_train)
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
        for _ in range(6):
            for start in range(0, data.n_train, 8):
                optimiser.zero_grad()
                loss = F.cross_entropy(model(data.X_train[start:start + 8]), data.y_train[start:start + 8])
                loss.backward()
                optimiser.step()
            callback.on_epoch_end(model)

    assert _run_threads([lambda k=k: user_loop(k) for k in range(3)]) == [None] * 3
    assert len(swarm.history) == 6
    final = swarm.global_state
    assert all(torch.equal(m.state_dict()[key], final[key]) for m in models for key in final)
    assert evaluate(models[0], *wine_split.test).accuracy > 0.85


def test_round_merge_equals_the_merge_rule_in_node_order(make_state):
    initial, states = make_state(0), [make_state(1), make_state(2)]
    swarm = InProcessSwarm(2, initial, merge="weighted_mean", seed=0)
    handles = [swarm.node(0), swarm.node(1)]
    assert all(isinstance(handle, SwarmBackend) for handle in handles)
    results = [None, None]

    def submit(k):
        results[k] = handles[k].submit(states[k], [3, 1][k])

    assert _run_threads([lambda: submit(1), lambda: submit(0)]) == [None, None]
    expected = merge("weighted_mean", states, previous=initial, weights=[3, 1], anchor=swarm.history[0].leader)
    for result in results:
        assert all(torch.equal(result[key], expected[key]) for key in expected)
    assert swarm.history[0].n_samples == [3, 1]


def test_single_node_round_closes_without_waiting(make_state):
    swarm = InProcessSwarm(1, make_state(0), merge="mean")
    merged = SwarmCallback(swarm.node(0), n_samples=5).on_epoch_end(build_model("mlp", 13, 3, seed=4, hidden=(8,)))
    assert all(torch.equal(merged[key], make_state(4)[key]) for key in merged)


def test_missing_node_times_out_naming_it(make_state):
    swarm = InProcessSwarm(3, make_state(0), timeout=0.05)
    with pytest.raises(SwarmTimeoutError, match=r"node 0 waited 0.05 s for nodes \[1, 2\]"):
        swarm.node(0).submit(make_state(1), 10)


def test_protocol_violations_are_refused(make_state):
    swarm = InProcessSwarm(2, make_state(0), timeout=0.05)
    node = swarm.node(0)
    with pytest.raises(SwarmProtocolError, match="node 0 has already joined"):
        swarm.node(0)
    with pytest.raises(SwarmProtocolError, match=r"node id 2 is not in \[0, 2\)"):
        swarm.node(2)
    with pytest.raises(SwarmProtocolError, match="n_samples must be >= 1"):
        node.submit(make_state(1), 0)
    with pytest.raises(SwarmProtocolError, match="n_samples must be >= 1"):
        SwarmCallback(node, n_samples=0)


def test_failed_merge_reaches_every_waiting_node_and_closes_the_swarm(make_state):
    swarm = InProcessSwarm(2, make_state(0), timeout=5)
    bad = make_state(1)
    bad[next(iter(bad))][0] = float("nan")
    handles = [swarm.node(0), swarm.node(1)]
    errors = _run_threads([lambda: handles[0].submit(make_state(2), 1), lambda: handles[1].submit(bad, 1)])
    assert all(isinstance(error, NonFiniteError) for error in errors)
    with pytest.raises(NonFiniteError):
        handles[0].submit(make_state(2), 1)


def test_sync_every_counts_the_hook_the_loop_calls():
    """Every third batch (or epoch) syncs; the calls between return None and leave the model."""
    submitted = []

    class Recorder:
        def submit(self, state, n_samples):
            submitted.append(n_samples)
            return {key: torch.zeros_like(value) for key, value in state.items()}

    model = build_model("mlp", 13, 3, seed=4, hidden=(8,))
    callback = SwarmCallback(Recorder(), n_samples=7, sync_every=3)
    results = [callback.on_batch_end(model) for _ in range(7)]
    assert [r is not None for r in results] == [False, False, True, False, False, True, False]
    assert submitted == [7, 7] and all(float(p.detach().abs().sum()) == 0 for p in model.parameters())
    assert [callback.on_epoch_end(model) is not None for _ in range(3)] == [False, False, True]
    with pytest.raises(SwarmProtocolError, match="sync_every"):
        SwarmCallback(Recorder(), n_samples=7, sync_every=0)
