"""Three organisations, each with its own training script (`train.py`: a small CNN, its own
loop and optimiser, `SwarmCallback`), in a swarm on a local chain; prints each one's test
accuracy against a model trained on its own data alone, and the tokens each earned.

    python examples/own_loop_cnn/run.py [--epochs 8] [--out runs/own_loop_cnn]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from swarmtoken.audit import audit_swarm  # noqa: E402
from swarmtoken.chain.ledger import read_ledger  # noqa: E402
from swarmtoken.cli.demo import PASSWORD, DemoOptions, LocalSwarm, free_port, prepare_out  # noqa: E402
from swarmtoken.cli.views import earned_by  # noqa: E402
from swarmtoken.units import wei_to_tokens  # noqa: E402

NODES = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="swarm epochs (the deployment's max_epochs)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "own_loop_cnn")
    args = parser.parse_args()
    console = Console()
    prepare_out(args.out)
    options = DemoOptions(nodes=NODES, rogue=0, epochs=args.epochs, port=free_port(), out=str(args.out),
                          elect_grace=5)
    with LocalSwarm(options, console) as env:
        console.print(f"[bold]local chain on port {options.port}; deploying; {NODES} organisations")
        env.start_chain()
        env.deploy()
        env.create_nodes()  # keystores, allow-listing with each shard's sample count, enrolment, node.toml
        environment = dict(os.environ, SWARM_KEYSTORE_PASSWORD=PASSWORD, OMP_NUM_THREADS="1")
        scripts = []
        for node in env.nodes:
            folder = node.config_path.parent
            with (folder / "train.log").open("w") as log:
                scripts.append(subprocess.Popen(
                    [sys.executable, str(Path(__file__).with_name("train.py")), "--config", str(node.config_path),
                     "--shard", str(node.index), "--shards", str(NODES), "--out", str(folder / "result.json"),
                     "--serve-until", str(args.out / "audited")],
                    stdout=log, stderr=subprocess.STDOUT, env=environment))
        results = [node.config_path.parent / "result.json" for node in env.nodes]
        deadline = time.monotonic() + 600
        while not all(path.exists() for path in results):  # the nodes still serve: audit their files
            failed = [i for i, script in enumerate(scripts) if script.poll() not in (None, 0)]
            if failed or time.monotonic() > deadline:
                raise SystemExit(f"organisation(s) {failed} failed; see {args.out}/node-<i>/train.log")
            time.sleep(0.5)
        ledger = read_ledger(env.handles.swarm, int(env.handles.record["block"]))
        earned = earned_by(ledger)
        report = audit_swarm(env.handles.swarm, env.handles.token, from_block=int(env.handles.record["block"]),
                             check_files=True)
        (args.out / "audited").touch()
        codes = [script.wait(timeout=60) for script in scripts]
        if any(codes):
            raise SystemExit(f"organisation(s) exited with {codes}; see {args.out}/node-<i>/train.log")
        settled = sum(1 for record in ledger.epochs.values() if record.settled_at is not None)
    results = [json.loads((node.config_path.parent / "result.json").read_text()) for node in env.nodes]
    table = Table(title=f"Own loop, small CNN: {settled} swarm epochs")
    for column in ("organisation", "local-only accuracy", "swarm accuracy", "tokens earned"):
        table.add_column(column)
    for i, result in enumerate(results):
        result["earned"] = str(wei_to_tokens(earned.get(result["address"], 0)))
        table.add_row(f"node-{i} {result['address'][:10]}", f"{result['local_accuracy']:.4f}",
                      f"{result['swarm_accuracy']:.4f}", f"{float(result['earned']):.2f}")
    console.print(table)
    verdict = "[green]audit ok[/green]" if report.ok else f"[red]audit FAILED: {report.discrepancies[0]}"
    console.print(f"{verdict} ({report.checks} checks, {report.files_checked} files verified)")
    summary = {"epochs_settled": settled, "audit_ok": report.ok, "audit_discrepancies": report.discrepancies,
               "files_verified": report.files_checked,
               "nodes": results}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
