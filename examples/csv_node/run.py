"""Three organisations' CSV files, `swarm train` with a plug-in loader: each organisation
keeps its records in its own column order and names its loader in node.toml (`[data]
loader = "clinic_loader:load"`, with the file as the loader's option). Prints each one's
accuracy on the held-out test set against a model trained on its own data alone, and the
tokens each earned.

    python examples/csv_node/run.py [--epochs 8] [--out runs/csv_node]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from swarmtoken.audit import audit_swarm  # noqa: E402
from swarmtoken.chain.ledger import read_ledger  # noqa: E402
from swarmtoken.cli.demo import DemoOptions, LocalSwarm, free_port, prepare_out  # noqa: E402
from swarmtoken.cli.views import earned_by  # noqa: E402
from swarmtoken.units import wei_to_tokens  # noqa: E402
from trainer.data import load_dataset, split_swarm  # noqa: E402
from trainer.models import build_model  # noqa: E402
from trainer.simulate import local_only  # noqa: E402
from trainer.training import TrainConfig, evaluate  # noqa: E402

NODES = 3
SEED = 0


def export_csv(node, path: Path, shuffle_seed: int) -> None:
    """What an organisation exports: its rows with a split column, in its own column order."""
    columns = [f"f{i}" for i in range(node.X_train.shape[1])] + ["diagnosis", "split"]
    random.Random(shuffle_seed).shuffle(columns)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for X, y, split in ((node.X_train, node.y_train, "train"), (node.X_val, node.y_val, "validation")):
            for features, label in zip(X.tolist(), y.tolist()):
                writer.writerow({**{f"f{i}": v for i, v in enumerate(features)}, "diagnosis": label, "split": split})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "csv_node")
    args = parser.parse_args()
    console = Console()
    prepare_out(args.out)
    split = split_swarm(load_dataset("digits", seed=SEED), NODES, partition="dirichlet", alpha=0.5, seed=SEED)
    options = DemoOptions(nodes=NODES, rogue=0, epochs=args.epochs, port=free_port(), out=str(args.out), seed=SEED,
                          elect_grace=5)
    with LocalSwarm(options, console) as env:
        env.start_chain()
        env.deploy()
        env.create_nodes()  # keystores, allowances attested from each organisation's row count, enrolment
        for node, data in zip(env.nodes, split.nodes):
            folder = node.config_path.parent
            export_csv(data, args.out / f"org-{node.index}.csv", shuffle_seed=node.index)
            shutil.copy(Path(__file__).with_name("clinic_loader.py"), folder)  # the organisation's own code
            text = node.config_path.read_text()
            data_section = text[text.index("[data]"):text.index("[model]")]
            node.config_path.write_text(text.replace(data_section, f'[data]\nloader = "clinic_loader:load"\n'
                                                                   f'path = "../org-{node.index}.csv"\n\n'))
        console.print(f"[bold]{NODES} organisations run `swarm train` with their own CSV loader")
        env.start_nodes()
        swarm = env.handles.swarm
        deadline = time.monotonic() + 600
        while not swarm.finished():
            dead = [node.index for node in env.nodes if not node.alive()]
            if dead or time.monotonic() > deadline:
                raise SystemExit(f"the swarm did not finish (node(s) {dead} stopped); see "
                                 f"{args.out}/node-<i>/node.log")
            time.sleep(0.5)
        start = int(env.handles.record["block"])
        last = int(swarm.currentEpoch())
        checkpoint = env.nodes[0].config_path.parent / "checkpoint.json"
        while not checkpoint.exists() or json.loads(checkpoint.read_text())["epoch"] != last:
            time.sleep(0.2)
        from swarmtoken.store import ParameterStore

        final = ParameterStore(env.nodes[0].config_path.parent / "store").load(
            json.loads(checkpoint.read_text())["sha256"])
        ledger = read_ledger(swarm, start)
        earned = earned_by(ledger)
        report = audit_swarm(swarm, env.handles.token, from_block=start, check_files=True)
        settled = sum(1 for record in ledger.epochs.values() if record.settled_at is not None)
        addresses = [node.address for node in env.nodes]
    model = build_model("mlp", split.n_features, split.n_classes, SEED)
    model.load_state_dict(final)
    swarm_accuracy = float(evaluate(model, *split.test).accuracy)
    alone = local_only(split, epochs=settled, train=TrainConfig(), seed=SEED)
    table = Table(title=f"CSV organisations with a plug-in loader: {settled} swarm epochs")
    for column in ("organisation", "local-only accuracy", "swarm accuracy", "tokens earned"):
        table.add_column(column)
    nodes = []
    for i, address in enumerate(addresses):
        nodes.append({"address": address, "local_accuracy": float(alone[i].accuracy),
                      "swarm_accuracy": swarm_accuracy, "earned": str(wei_to_tokens(earned.get(address, 0)))})
        table.add_row(f"org-{i} {address[:10]}", f"{alone[i].accuracy:.4f}", f"{swarm_accuracy:.4f}",
                      f"{float(nodes[-1]['earned']):.2f}")
    console.print(table)
    verdict = "[green]audit ok[/green]" if report.ok else f"[red]audit FAILED: {report.discrepancies[0]}"
    console.print(f"{verdict} ({report.checks} checks, {report.files_checked} files verified)")
    (args.out / "summary.json").write_text(json.dumps(
        {"epochs_settled": settled, "audit_ok": report.ok, "audit_discrepancies": report.discrepancies,
         "nodes": nodes}, indent=2))


if __name__ == "__main__":
    main()
