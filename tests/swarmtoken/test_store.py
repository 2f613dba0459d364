"""The data layer over real loopback HTTP: a node's files stay private until released,
and a downloaded file is refused unless it is exactly what its owner committed."""

from __future__ import annotations

import io
import os
import pickle
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from swarmtoken.store import (
    CommitmentMismatchError,
    FileTooLargeError,
    HashMismatchError,
    MalformedFileError,
    NonFiniteError,
    ParameterServer,
    ParameterStore,
    ShapeMismatchError,
    UnreachableError,
    bytes32_to_hex,
    commit_url,
    commitment_of,
    download,
    download_committed,
    fetch,
    fetch_committed,
    hex_to_bytes32,
    normalize_sha256,
    serialize,
    sha256_hex,
)

FAST = {"timeout": 2.0, "retries": 2, "backoff": 0.01}


def tiny_model() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "layer.weight": torch.randn(4, 3, generator=generator),
        "layer.bias": torch.randn(4, generator=generator),
        "norm.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
        "half": torch.randn(2, 2, generator=generator).to(torch.bfloat16),
    }


@pytest.fixture
def store(tmp_path) -> ParameterStore:
    return ParameterStore(tmp_path / "params")


@pytest.fixture
def server(store) -> Iterator[ParameterServer]:
    with ParameterServer(store) as running:
        yield running


def publish_raw(store: ParameterStore, data: bytes) -> str:
    """Put arbitrary bytes in the store under their own hash and release them, as a
    hostile peer serving garbage with a matching commitment would."""
    sha = sha256_hex(data)
    store.path_for(sha).write_bytes(data)
    store.release(sha)
    return sha


@contextmanager
def custom_server(do_get: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """A loopback server whose GET does whatever the test needs; yields its base URL."""
    handler = type("Handler", (BaseHTTPRequestHandler,), {"do_GET": do_get, "log_message": lambda *a: None})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- round trip and determinism ---------------------------------------------------


def test_released_file_round_trips_over_loopback_http(store, server):
    model = tiny_model()
    stored = store.save(model)
    store.release(stored.sha256)

    got = fetch(server.url_for(stored.sha256), stored.sha256, reference=model, **FAST)

    assert sorted(got) == sorted(model)
    for key in model:
        assert got[key].dtype == model[key].dtype and torch.equal(got[key], model[key])
    assert stored.path.name == f"{stored.sha256}.safetensors"
    assert stored.size == stored.path.stat().st_size == len(serialize(model))


def test_same_tensors_give_the_same_bytes_whatever_their_order_layout_or_grad():
    model = tiny_model()
    reordered = dict(reversed(list(model.items())))
    transposed = model["layer.weight"].t().contiguous().t()  # same values, column-major
    assert not transposed.is_contiguous()
    laid_out = {**model, "layer.weight": transposed}
    with_grad = {**model, "layer.bias": model["layer.bias"].clone().requires_grad_()}

    reference = serialize(model)
    assert serialize(reordered) == reference
    assert serialize(laid_out) == reference
    assert serialize(with_grad) == reference


def test_bytes_are_the_documented_safetensors_layout_so_nodes_on_any_machine_agree():
    # If safetensors ever changed its byte layout, nodes on different versions would
    # disagree on every merged hash; this catches it here rather than on chain.
    state = {"b": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a": torch.ones(3, dtype=torch.int64)}
    header = (
        b'{"a":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},'
        b'"b":{"dtype":"F32","shape":[2,3],"data_offsets":[24,48]}}'
    )
    body = struct.pack("<3q", 1, 1, 1) + struct.pack("<6f", 0, 1, 2, 3, 4, 5)
    assert serialize(state) == struct.pack("<Q", len(header)) + header + body


def test_tied_weights_serialise_as_their_values():
    shared = torch.randn(3, 3)
    tied = {"encoder.weight": shared, "decoder.weight": shared}
    assert serialize(tied) == serialize({"encoder.weight": shared.clone(), "decoder.weight": shared.clone()})


def test_saving_equal_tensors_again_keeps_one_file_and_repairs_it(store):
    first = store.save(tiny_model())
    first.path.write_bytes(b"damaged")
    second = store.save(tiny_model())
    assert first == second and second.path.read_bytes() == serialize(tiny_model())
    assert len(list(store.root.glob("*.safetensors"))) == 1
    assert not list(store.root.glob(".partial-*"))


@pytest.mark.parametrize(
    "state, error, message",
    [({}, ValueError, "empty"), ({"w": [1.0, 2.0]}, TypeError, "'w': list"), ({1: torch.ones(1)}, TypeError, "1")],
)
def test_only_non_empty_tensor_dicts_serialise(state, error, message):
    with pytest.raises(error, match=message):
        serialize(state)


# --- commit-reveal: nothing is served before release ------------------------------


def test_unreleased_file_is_refused_until_released(store, server):
    stored = store.save(tiny_model())
    url = server.url_for(stored.sha256)

    status, body = http_get(url)
    assert status == 403 and b"not released" in body

    with pytest.raises(UnreachableError, match="403.*not released") as refused:
        fetch(url, stored.sha256, **FAST)
    assert refused.value.status == 403 and refused.value.attempts == FAST["retries"] + 1

    store.release(stored.sha256)
    assert http_get(url) == (200, stored.path.read_bytes())


def test_release_survives_a_restart_and_needs_the_file(store, tmp_path):
    stored = store.save(tiny_model())
    store.release(stored.sha256)
    assert ParameterStore(store.root).is_released(stored.sha256)
    with pytest.raises(FileNotFoundError, match="cannot release"):
        store.release("ab" * 32)


@pytest.mark.parametrize(
    "path, status, body",
    [
        ("/params/" + "ab" * 32, 404, b"no parameter file"),
        ("/params/" + "AB" * 32, 400, b"not a sha256"),
        ("/params/../../etc/passwd", 400, b"not a sha256"),
        ("/params/", 400, b"not a sha256"),
        ("/elsewhere", 404, b"no route"),
    ],
)
def test_unknown_and_malformed_paths_are_refused_with_a_reason(server, path, status, body):
    got_status, got_body = http_get(server.base_url + path)
    assert got_status == status and body in got_body


def test_server_logs_nothing_to_stderr(store, server, capfd):
    stored = store.save(tiny_model())
    http_get(server.url_for(stored.sha256))
    http_get(server.base_url + "/elsewhere")
    store.release(stored.sha256)
    with pytest.raises(FileTooLargeError):  # the client hangs up on the server
        fetch(server.url_for(stored.sha256), stored.sha256, max_bytes=8, **FAST)
    assert capfd.readouterr().err == ""


def test_public_url_is_what_peers_are_told(store):
    with ParameterServer(store, public_url="https://node-a.example.org/swarm/") as running:
        assert running.url_for("ab" * 32) == "https://node-a.example.org/swarm/params/" + "ab" * 32


# --- what a downloader refuses ----------------------------------------------------


def test_file_tampered_on_disk_is_a_hash_mismatch(store, server):
    stored = store.save(tiny_model())
    store.release(stored.sha256)
    tampered = bytearray(stored.path.read_bytes())
    tampered[-1] ^= 0x01
    stored.path.write_bytes(bytes(tampered))

    url = server.url_for(stored.sha256)
    with pytest.raises(HashMismatchError, match=f"{url}: sha256 mismatch: expected {stored.sha256}, found"):
        fetch(url, stored.sha256, **FAST)
    with pytest.raises(HashMismatchError, match=stored.sha256):
        store.load(stored.sha256)


def test_own_file_loads_back_with_the_same_checks(store):
    model = tiny_model()
    stored = store.save(model)
    got = store.load(hex_to_bytes32(stored.sha256), reference=model)
    assert all(torch.equal(got[key], model[key]) for key in model)


def test_file_larger_than_the_limit_is_refused_from_its_content_length(store, server):
    stored = store.save({"w": torch.zeros(1000)})
    store.release(stored.sha256)
    with pytest.raises(FileTooLargeError, match=f"at most 1000 bytes, server declares {stored.size}"):
        fetch(server.url_for(stored.sha256), stored.sha256, max_bytes=1000, **FAST)


def test_body_streamed_past_the_limit_is_cut_off():
    sent = []

    def endless(handler: BaseHTTPRequestHandler) -> None:  # no Content-Length: read until close
        handler.send_response(200)
        handler.end_headers()
        try:
            for _ in range(256):
                handler.wfile.write(b"\0" * 65536)
                sent.append(1)
        except OSError:
            pass

    with custom_server(endless) as base:
        with pytest.raises(FileTooLargeError, match="at most 100000 bytes, server sent more"):
            fetch(base + "/params/x", "ab" * 32, max_bytes=100_000, **FAST)
    assert len(sent) < 256  # the client hung up; it did not take the whole 16 MiB


def test_garbage_with_a_matching_hash_is_malformed(store, server):
    sha = publish_raw(store, b"\xff" * 64)
    with pytest.raises(MalformedFileError, match="not a safetensors file"):
        fetch(server.url_for(sha), sha, **FAST)


class _Armed:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_pickle_is_never_unpickled(store, server, tmp_path):
    pickle.loads(pickle.dumps(_Armed(str(tmp_path / "armed-check"))))
    assert (tmp_path / "armed-check").is_dir()  # the payload is live

    payload = pickle.dumps({"w": _Armed(str(tmp_path / "pwned"))})
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    for data in (payload, buffer.getvalue()):
        sha = publish_raw(store, data)
        with pytest.raises(MalformedFileError):
            fetch(server.url_for(sha), sha, **FAST)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda m: {**m, "layer.weight": torch.zeros(3, 4)},
            r"'layer.weight': expected torch.float32 \(4, 3\), found torch.float32 \(3, 4\)",
        ),
        (
            lambda m: {**m, "layer.bias": m["layer.bias"].double()},
            r"'layer.bias': expected torch.float32 \(4,\), found torch.float64 \(4,\)",
        ),
        (lambda m: {k: v for k, v in m.items() if k != "layer.bias"}, r"missing \['layer.bias'\], unexpected \[\]"),
        (lambda m: {**m, "extra": torch.ones(1)}, r"missing \[\], unexpected \['extra'\]"),
    ],
    ids=["shape", "dtype", "missing-key", "extra-key"],
)
def test_layout_differing_from_the_reference_is_refused(store, server, change, message):
    model = tiny_model()
    stored = store.save(change(model))
    store.release(stored.sha256)
    url = server.url_for(stored.sha256)
    with pytest.raises(ShapeMismatchError, match=message) as refused:
        fetch(url, stored.sha256, reference=model, **FAST)
    assert str(refused.value).startswith(url) and refused.value.url == url


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_refused(store, server, bad):
    model = tiny_model()
    model["layer.bias"][2] = bad
    stored = store.save(model)
    store.release(stored.sha256)
    with pytest.raises(NonFiniteError, match=r"'layer.bias': expected only finite values, found 1 NaN/Inf of 4"):
        fetch(server.url_for(stored.sha256), stored.sha256, reference=tiny_model(), **FAST)


def test_large_finite_values_whose_sum_overflows_are_accepted(store, server):
    model = {"w": torch.full((8,), 60000.0, dtype=torch.float16)}  # sums past float16's max
    assert not torch.isfinite(model["w"].sum())
    stored = store.save(model)
    store.release(stored.sha256)
    assert torch.equal(fetch(server.url_for(stored.sha256), stored.sha256, **FAST)["w"], model["w"])


# --- unreachable peers: bounded retries, then a clear error -----------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_server_down_is_unreachable_after_the_bounded_retries():
    url = f"http://127.0.0.1:{free_port()}/params/" + "ab" * 32
    with pytest.raises(UnreachableError, match="Connection refused") as down:
        fetch(url, "ab" * 32, **FAST)
    assert down.value.attempts == FAST["retries"] + 1 and down.value.status is None


def test_server_errors_are_retried_and_a_recovery_is_used():
    data = serialize(tiny_model())
    calls = []

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        calls.append(1)
        status, body = (503, b"busy") if len(calls) < 3 else (200, data)
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with custom_server(flaky) as base:
        got = fetch(base + "/params/x", sha256_hex(data), **FAST)
    assert len(calls) == 3 and torch.equal(got["layer.weight"], tiny_model()["layer.weight"])


def test_a_missing_file_is_not_retried(server):
    with pytest.raises(UnreachableError, match="HTTP 404") as missing:
        fetch(server.url_for("ab" * 32), "ab" * 32, **FAST)
    assert missing.value.attempts == 1


def test_a_truncated_body_is_retried_not_reported_as_tampering():
    def truncating(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b"\0" * 10)
        handler.close_connection = True

    with custom_server(truncating) as base:
        with pytest.raises(UnreachableError, match="closed after 10 of 1000 bytes") as cut:
            fetch(base + "/params/x", "ab" * 32, **FAST)
    assert cut.value.attempts == FAST["retries"] + 1


@pytest.mark.parametrize("style", ["stalls", "trickles"])
def test_a_slow_server_times_out_as_unreachable(style):
    done = threading.Event()

    def slow(handler: BaseHTTPRequestHandler) -> None:
        if style == "stalls":
            done.wait(5)
            return
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        while not done.is_set():  # one byte every 50 ms: never idle long enough for a socket timeout
            handler.wfile.write(b"\0")
            handler.wfile.flush()
            done.wait(0.05)

    started = time.monotonic()
    try:
        with custom_server(slow) as base:
            with pytest.raises(UnreachableError, match="timed out") as slow_error:
                fetch(base + "/params/x", "ab" * 32, timeout=0.2, retries=1, backoff=0.01)
    finally:
        done.set()
    assert slow_error.value.attempts == 2
    assert time.monotonic() - started < 2.0


def test_only_http_urls_are_fetched(tmp_path):
    with pytest.raises(UnreachableError, match="only http\\(s\\) URLs"):
        download(f"file://{tmp_path}/x", "ab" * 32)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="max_bytes=0"):
        download("http://127.0.0.1:1/params/x", "ab" * 32, max_bytes=0)
    with pytest.raises(ValueError, match="not a sha256"):
        download("http://127.0.0.1:1/params/x", "abc")


# --- hash spellings ----------------------------------------------------------------


def test_hash_converts_to_and_from_the_contracts_bytes32():
    sha = sha256_hex(b"swarm")
    raw = hex_to_bytes32(sha)
    assert len(raw) == 32 and bytes32_to_hex(raw) == sha
    assert normalize_sha256("0x" + sha.upper()) == sha
    with pytest.raises(ValueError, match="32 bytes, got 31"):
        bytes32_to_hex(raw[:-1])


# --- commitments bound to their sender -------------------------------------------

HONEST = "0x1111111111111111111111111111111111111111"
COPYCAT = "0x2222222222222222222222222222222222222222"


def test_commitment_binds_sender_epoch_and_file():
    sha = "ab" * 32
    base = commitment_of(HONEST, 3, sha)
    assert len(base) == 64 and base == commitment_of(HONEST.upper().replace("0X", "0x"), 3, bytes.fromhex(sha))
    assert commitment_of(COPYCAT, 3, sha) != base
    assert commitment_of(HONEST, 4, sha) != base
    assert commitment_of(HONEST, 3, "cd" * 32) != base


def test_committed_file_is_served_under_its_commitment_once_released(store, server):
    model = tiny_model()
    stored = store.save(model)
    commitment = commitment_of(HONEST, 1, stored.sha256)
    store.bind_commitment(commitment, stored.sha256)
    status, body = http_get(commit_url(server.base_url, commitment))
    assert status == 403 and b"not released" in body

    store.release(stored.sha256)
    sha, got = fetch_committed(server.base_url, HONEST, 1, commitment, reference=model, **FAST)
    assert sha == stored.sha256 and torch.equal(got["layer.weight"], model["layer.weight"])


def test_a_copied_commitment_does_not_open_for_the_copycat(store, server):
    """The copycat commits the honest node's commitment and, after the reveal, serves the
    honest node's very bytes under it: the file opens the commitment only for its
    rightful sender."""
    stored = store.save(tiny_model())
    copied = commitment_of(HONEST, 1, stored.sha256)
    store.bind_commitment(copied, stored.sha256)
    store.release(stored.sha256)
    with pytest.raises(CommitmentMismatchError, match="does not open"):
        fetch_committed(server.base_url, COPYCAT, 1, copied, **FAST)
    with pytest.raises(CommitmentMismatchError):
        fetch_committed(server.base_url, HONEST, 2, copied, **FAST)


@pytest.mark.parametrize("path, status, body", [
    ("/commits/" + "0" * 64, 404, b"no file committed"),
    ("/commits/xyz", 400, b"not a commitment"),
])
def test_unknown_and_malformed_commitments_are_refused_with_a_reason(server, path, status, body):
    got_status, got_body = http_get(server.base_url + path)
    assert got_status == status and body in got_body


def test_a_commitment_binds_only_to_a_file_the_store_holds(store):
    with pytest.raises(FileNotFoundError, match="cannot bind"):
        store.bind_commitment("00" * 32, "ab" * 32)
    assert store.opened_by("00" * 32) is None


def test_unfinished_writes_are_removed_and_finished_files_kept(store):
    """A process killed mid-write leaves a .partial-* file; its owner removes them at start."""
    kept = store.save({"w": torch.ones(3)})
    (store.root / ".partial-abc123").write_bytes(b"half a file")
    (store.root / ".partial-def456").write_bytes(b"")
    assert store.remove_partials() == 2
    assert not list(store.root.glob(".partial-*"))
    assert store.has(kept.sha256) and store.remove_partials() == 0


def test_a_peers_bytes_are_kept_as_they_are_and_served_under_its_commitment(store, server):
    """The leader keeps each file it merges byte for byte (a re-serialised copy of a file
    someone wrote differently would not open the commitment) and serves it on."""
    data = b"bytes no serialiser of ours would write"
    kept = store.put(data)
    assert kept.sha256 == sha256_hex(data) and store.path_for(kept.sha256).read_bytes() == data
    commitment = commitment_of(COPYCAT, 2, kept.sha256)
    store.bind_commitment(commitment, kept.sha256)
    store.release(kept.sha256)
    assert download_committed(server.base_url, COPYCAT, 2, commitment, **FAST) == (kept.sha256, data)
    with pytest.raises(CommitmentMismatchError):
        download_committed(server.base_url, HONEST, 2, commitment, **FAST)


def test_an_unbound_commitment_is_no_longer_served_but_its_file_stays(store, server):
    stored = store.save(tiny_model())
    commitment = commitment_of(HONEST, 1, stored.sha256)
    store.bind_commitment(commitment, stored.sha256)
    store.release(stored.sha256)
    store.unbind_commitment(commitment)
    store.unbind_commitment(commitment)
    assert store.opened_by(commitment) is None and store.has(stored.sha256)
    status, body = http_get(commit_url(server.base_url, commitment))
    assert status == 404 and b"no file committed" in body


def test_on_served_is_told_each_full_download_and_nothing_else(store):
    stored = store.save(tiny_model())
    store.release(stored.sha256)
    served: list[str] = []
    with ParameterServer(store, on_served=served.append) as running:
        http_get(running.base_url + "/params/" + "0" * 64)
        http_get(running.base_url + "/nowhere")
        http_get(running.url_for(stored.sha256))
        deadline = time.monotonic() + 5  # the hook runs in the serving thread, after the body
        while not served and time.monotonic() < deadline:
            time.sleep(0.01)
    assert served == ["/params/" + stored.sha256]
