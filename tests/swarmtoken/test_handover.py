"""The slot between a user's loop and its node thread: an offer is committed only while it
is fresh, stays until a newer global model arrives (so an abandoned epoch does not lose
it), and the loop always gets the newest model, the final one, or the node's failure."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from swarmtoken.backend import validation_rows
from swarmtoken.node.handover import Handover, SwarmStoppedError


def state(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2,), value)}


def submit_in_thread(handover: Handover, base: int, timeout: float = 5.0):
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = handover.submit(state(1.0), 10, base, timeout)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 5
    while handover.take(base) is None and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread, result


def test_a_fresh_offer_is_taken_until_a_newer_model_is_adopted_and_then_handed_back():
    handover = Handover(3, state(0.0))
    thread, result = submit_in_thread(handover, base=3)
    offer = handover.take(3)
    assert offer is not None and offer.n_samples == 10 and torch.equal(offer.state["w"], state(1.0)["w"])
    assert handover.take(3) is not None  # an abandoned epoch: still there for the next one
    handover.adopted(4, state(4.0))
    thread.join(5)
    epoch, merged = result["value"]
    assert epoch == 4 and torch.equal(merged["w"], state(4.0)["w"])
    assert handover.take(4) is None  # the loop has it; nothing left to commit


def test_an_offer_trained_from_an_older_model_is_never_taken_and_the_loop_gets_the_current_one_at_once():
    handover = Handover(5, state(5.0))
    epoch, merged = handover.submit(state(1.0), 10, base_epoch=2, timeout=1.0)
    assert epoch == 5 and torch.equal(merged["w"], state(5.0)["w"])
    assert handover.take(2) is None and handover.take(5) is None


def test_a_finished_swarm_hands_back_its_final_model():
    handover = Handover(7, state(7.0))
    handover.finish()
    assert handover.finished
    assert handover.submit(state(1.0), 10, base_epoch=7, timeout=1.0)[0] == 7


def test_a_node_failure_reaches_the_waiting_loop():
    handover = Handover(1, state(0.0))
    thread, result = submit_in_thread(handover, base=1)
    handover.fail(RuntimeError("keystore locked"))
    thread.join(5)
    assert isinstance(result["error"], SwarmStoppedError) and "keystore locked" in str(result["error"])


def test_a_submit_that_waits_too_long_times_out_and_withdraws_its_offer():
    handover = Handover(1, state(0.0))
    with pytest.raises(TimeoutError, match="epoch 1"):
        handover.submit(state(1.0), 10, base_epoch=1, timeout=0.05)
    assert handover.take(1) is None


def test_validation_rows_come_from_tensors_a_dataset_or_a_loader():
    from torch.utils.data import DataLoader, TensorDataset

    X, y = torch.randn(10, 1, 8, 8), torch.arange(10) % 3
    for given in ((X, y), TensorDataset(X, y), DataLoader(TensorDataset(X, y), batch_size=3)):
        got_X, got_y = validation_rows(given)
        assert torch.equal(got_X, X) and torch.equal(got_y, y) and got_y.dtype == torch.int64
    with pytest.raises(TypeError, match="validation must be"):
        validation_rows(42)
    with pytest.raises(ValueError, match="empty"):
        validation_rows(DataLoader(TensorDataset(X[:0], y[:0])))
