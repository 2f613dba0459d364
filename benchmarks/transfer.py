"""Cost of the data layer per parameter file: save (serialise, hash, write) and fetch
over loopback HTTP (download, hash, parse, layout and finiteness checks).

Usage (from the repository root)::

    python benchmarks/transfer.py --out benchmarks/results/transfer.json [--quick]

For each file size the script saves one float32 state dict (a few equal layers adding
up to the size), releases it, serves it from a `ParameterServer` on 127.0.0.1 and
fetches it with the model as reference; each timing is the median of ``--repeats``
runs. The JSON maps the size in MiB to ``{"bytes", "save_s", "fetch_s",
"fetch_mib_s"}``. A leader at epoch end fetches one file per participant, so
``n * fetch_s`` bounds the transfer share of an epoch on one machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from swarmtoken.store import ParameterServer, ParameterStore, StoredFile, fetch  # noqa: E402

SIZES_MIB = (1, 16, 64)
QUICK_SIZES_MIB = (1, 16)
LAYERS = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_SIZES_MIB} MiB")
    parser.add_argument("--repeats", type=int, default=5, help="runs per timing (median reported)")
    return parser.parse_args(argv)


def model_of(mib: int) -> dict[str, torch.Tensor]:
    """``LAYERS`` float32 weight matrices totalling ``mib`` MiB, seeded."""
    generator = torch.Generator().manual_seed(mib)
    per_layer = mib * 2**20 // 4 // LAYERS
    return {f"layer{i}.weight": torch.randn(per_layer, generator=generator) for i in range(LAYERS)}


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(mib: int, repeats: int, folder: Path) -> dict[str, float]:
    """Save and fetch timings for one file size."""
    model = model_of(mib)
    store = ParameterStore(folder / f"{mib}mib")
    stored: StoredFile = store.save(model)
    store.release(stored.sha256)
    # Saving an existing hash skips the write; time the full path on a fresh store each run.
    save_s = median_seconds(lambda: ParameterStore(tempfile.mkdtemp(dir=folder)).save(model), repeats)
    with ParameterServer(store) as server:
        url = server.url_for(stored.sha256)
        fetch_s = median_seconds(lambda: fetch(url, stored.sha256, reference=model, max_bytes=stored.size), repeats)
    mib_s = stored.size / 2**20 / fetch_s
    return {"bytes": stored.size, "save_s": save_s, "fetch_s": fetch_s, "fetch_mib_s": mib_s}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    sizes = QUICK_SIZES_MIB if args.quick else SIZES_MIB
    with tempfile.TemporaryDirectory() as folder:
        results = {str(mib): measure(mib, args.repeats, Path(folder)) for mib in sizes}
    table = Table(title="parameter file transfer (loopback, median)")
    for column in ("MiB", "save s", "fetch s", "fetch MiB/s"):
        table.add_column(column, justify="right")
    for mib, row in results.items():
        table.add_row(mib, f"{row['save_s']:.4f}", f"{row['fetch_s']:.4f}", f"{row['fetch_mib_s']:.0f}")
    Console().print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
