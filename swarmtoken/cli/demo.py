"""`swarm demo`: a whole swarm on one machine, for real.

An embedded anvil chain, the contracts deployed from the build artifacts, one encrypted
keystore per node, and N separate node processes (`swarm train`) that coordinate only
through the chain and each other's parameter stores over loopback HTTP. The demo itself
only watches: it follows the chain, evaluates each settled merge on the held-out test
set, and at the end compares with local-only training, a centrally trained model and the
in-process simulator, runs the audit, and writes a run folder (summary.json, one JSON
per epoch, plots).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..config import ConfigError, SwarmConfig, check_registered
from ..chain.epochview import PHASES, read_epoch
from ..chain.localchain import LocalChainError
from ..node.config import ChainSection, DataSection, ModelSection, NodeConfig, NodeSection, StoreSection
from ..node.protocol_attacks import PROTOCOL_ATTACKS
from ..units import METRIC_SCALE, SCORE_SCALE, wei_to_tokens

PASSWORD = "demo-only-password"  # keystores of a throwaway local demo, never reused
FUNDING = "100 ether"


@dataclass(frozen=True)
class DemoOptions:
    nodes: int = 5
    rogue: int = 1
    attack: str = "sign_flip"
    merge: str = SwarmConfig.merge_rule
    scorer: str = SwarmConfig.scorer
    dataset: str = "digits"
    alpha: float = 0.5
    epochs: int = 10
    seed: int = 0
    port: int = 8545
    out: str = "runs/demo"
    commit_window: int = 3
    merge_window: int = 10
    report_window: int = 10
    elect_grace: float = 20.0
    elect_early: bool = True
    protocol_attacks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.nodes < 3:
            raise ConfigError("--nodes must be at least 3 (a robust median needs three reporters)")
        if not 0 <= self.rogue + len(self.protocol_attacks) < self.nodes / 2:
            raise ConfigError("--rogue plus the --protocol-attack nodes must be >= 0 and fewer than half of --nodes")
        if self.epochs < 1:
            raise ConfigError("--epochs must be >= 1")
        from trainer.attacks import ATTACKS
        from trainer.data import DATASETS
        from trainer.merges import MERGES
        from trainer.scoring import SCORERS

        check_registered("--attack", self.attack, ATTACKS)
        for attack in self.protocol_attacks:
            check_registered("--protocol-attack", attack, PROTOCOL_ATTACKS)
        check_registered("--merge", self.merge, MERGES)
        check_registered("--scorer", self.scorer, SCORERS)
        check_registered("--dataset", self.dataset, DATASETS)

    @property
    def min_peers(self) -> int:
        """3, or the number of honest nodes if fewer: the rogues are suspended in time, and a
        swarm that needs more active members than it has left would wait for ever."""
        return min(3, self.nodes - self.rogue - len(self.protocol_attacks))

    @property
    def rogue_ids(self) -> list[int]:
        """The last ``rogue`` shards are rogue: fixed, so reruns and the simulator agree."""
        return list(range(self.nodes - self.rogue, self.nodes))

    def protocol_attack_of(self, index: int) -> str:
        """The nodes just before the model rogues run the protocol attacks, in order."""
        first = self.nodes - self.rogue - len(self.protocol_attacks)
        return self.protocol_attacks[index - first] if first <= index < first + len(self.protocol_attacks) else ""


@dataclass
class NodeProcess:
    index: int
    address: str
    config_path: Path
    log_path: Path
    rogue: bool
    process: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, SWARM_KEYSTORE_PASSWORD=PASSWORD, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "swarmtoken.cli.commands", "train", "--config",
                                         str(self.config_path)], stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)

    @property
    def label(self) -> str:
        return f"node-{self.index}" + (" (rogue)" if self.rogue else "")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class EpochView:
    """One epoch as the demo shows it. Per participant: ``scores`` is the epoch's credit (the
    mean of the other validators' votes), ``smoothed`` the smoothed credit after it, which
    payouts follow, ``standing`` the participants in good standing (full data weight)."""

    epoch: int
    leader: str | None = None
    accuracy: float | None = None
    metric: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    smoothed: dict[str, float] = field(default_factory=dict)
    standing: list[str] = field(default_factory=list)
    payouts: dict[str, int] = field(default_factory=dict)
    forfeited: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reports: dict[str, float] = field(default_factory=dict)


#: scrypt's n for demo keystores. Their keys follow from a public seed (`demo_key`), so the
#: encryption protects nothing; the default work factor would cost every demo node 0.7 s of
#: CPU at start, several seconds of the demo's wall time on two cores.
DEMO_WORK_FACTOR = 2 ** 10


def demo_key(seed: int, index: int) -> bytes:
    """A throwaway key derived from the demo's seed, so a rerun with the same seed has the
    same node addresses and its run folder compares line by line (demo accounts only)."""
    import hashlib

    return hashlib.sha256(f"swarm-demo:{seed}:{index}".encode()).digest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_out(out: Path) -> None:
    """Start from an empty run folder, but never wipe a folder a demo did not write."""
    if out.exists() and any(out.iterdir()):
        if not (out / "deployment.json").exists() and not (out / "summary.json").exists():
            raise ConfigError(f"{out} exists and is not a demo run folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


class LocalSwarm:
    """Chain + contracts + node processes on this machine: what the demo, the end-to-end
    tests and the overhead benchmark drive."""

    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.out = Path(options.out)
        self.console = console or Console()
        self.chain_process: subprocess.Popen | None = None
        self.nodes: list[NodeProcess] = []
        self.handles: Any = None

    # ---------------------------------------------------------------- setup
    def start_chain(self) -> None:
        from ..chain.connection import connect
        from ..chain.localchain import start

        self.chain_process = start(self.options.port, log_file=self.out / "anvil.log")
        connect("development", self.options.port)

    def deploy(self) -> None:
        from brownie import accounts, chain

        from ..chain.connection import SwarmHandles, load_project
        from ..chain.deployment import deploy, write_record

        from trainer.data import load_dataset

        opts = self.options
        data = load_dataset(opts.dataset, seed=opts.seed)
        config = SwarmConfig(min_peers=opts.min_peers, max_peers=max(16, opts.nodes), commit_window=opts.commit_window,
                             merge_window=opts.merge_window, report_window=opts.report_window,
                             reward_per_epoch="1000", merge_rule=opts.merge, scorer=opts.scorer,
                             max_epochs=opts.epochs, n_features=data.n_features, n_classes=data.n_classes)
        deployment = deploy(load_project(), config, accounts[0])
        record_path = write_record(self.out / "deployment.json", network="development", chain_id=chain.id,
                                   deployment=deployment, config=config)
        self.handles = SwarmHandles(deployment.swarm, deployment.token, json.loads(record_path.read_text()))

    def create_nodes(self) -> None:
        """Keystores, funding, allow-listing with each node's true sample count as its
        allowance (what a consortium attests), enrolment (each node enrols with its own key
        and the address its store will serve at), then one config file per node."""
        from brownie import accounts

        from ..chain.connection import create_keystore, load_account
        from ..node.localdata import load_local_data

        opts, swarm = self.options, self.handles.swarm
        for i in range(opts.nodes):
            folder = self.out / f"node-{i}"
            keystore = folder / "keystore.json"
            address = create_keystore(keystore, PASSWORD, demo_key(opts.seed, i), DEMO_WORK_FACTOR)
            accounts[0].transfer(address, FUNDING)
            port = free_port()
            rogue = i in opts.rogue_ids
            cheat = opts.protocol_attack_of(i)
            config = NodeConfig(
                chain=ChainSection(network="development", rpc_port=opts.port, deployment="../deployment.json",
                                   keystore="keystore.json"),
                store=StoreSection(dir="store", port=port),
                data=DataSection(dataset=opts.dataset, shard=i, shards=opts.nodes, alpha=opts.alpha, seed=opts.seed),
                model=ModelSection(),
                node=NodeSection(attack=opts.attack if rogue else cheat, serve_after_finish=True,
                                 elect_grace=opts.elect_grace, elect_early=opts.elect_early),
                base_dir=folder,
            )
            swarm.authorize(address, 0, load_local_data(config).node.n_train, {"from": accounts[0]}, silent=True)
            node_account = load_account(keystore, PASSWORD)
            swarm.enroll(f"http://127.0.0.1:{port}", {"from": node_account}, silent=True)
            config_path = folder / "node.toml"
            config_path.write_text(config.to_toml())
            self.nodes.append(NodeProcess(i, address, config_path, folder / "node.log", rogue or bool(cheat)))

    def start_nodes(self) -> None:
        for node in self.nodes:
            node.start()

    def launch(self) -> LocalSwarm:
        """Chain, contracts, nodes and their processes: a running swarm."""
        self.start_chain()
        self.deploy()
        self.create_nodes()
        self.start_nodes()
        return self

    # ---------------------------------------------------------------- teardown
    def stop(self) -> None:
        """Stop the nodes, detach brownie (while the chain still answers, so it resets its
        transaction history), then stop the chain."""
        from brownie import network

        for node in self.nodes:
            node.stop()
        if network.is_connected():
            network.disconnect(kill_rpc=False)
        if self.chain_process is not None:
            from ..chain.localchain import stop_pid

            stop_pid(self.chain_process.pid)
            self.chain_process.wait(timeout=10)

    def __enter__(self) -> LocalSwarm:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def evaluate_merge(record: Any, base_uri: str, split: Any, model: Any, reference: dict) -> float | None:
    """Test-set accuracy of an epoch's model (the hash settlement recorded), fetched from
    the leader's store (``base_uri``) and hash-checked."""
    from trainer.training import evaluate

    from ..store import FetchError, fetch
    from ..store.server import ROUTE

    try:
        state = fetch(f"{base_uri}{ROUTE}{record.model_hash}", record.model_hash, reference=reference, timeout=5,
                      retries=2, backoff=0.2)
    except FetchError:
        return None
    model.load_state_dict(state)
    return float(evaluate(model, *split.test).accuracy)


def watch(swarm_env: LocalSwarm, split: Any, model: Any, reference: dict, timeout_s: float) -> list[EpochView]:
    """Follow the chain until the swarm finishes, rendering a live table per epoch."""
    swarm = swarm_env.handles.swarm
    start_block = int(swarm_env.handles.record["block"])
    names = {n.address: n.label for n in swarm_env.nodes}
    views: list[EpochView] = []
    done: set[int] = set()
    deadline = time.monotonic() + timeout_s

    def render() -> Table:
        epoch = int(swarm.currentEpoch())
        phase = "Finished" if swarm.finished() else PHASES[int(swarm.epochState(epoch)["phase"])]
        table = Table(title=f"Swarm demo: epoch {epoch}, phase {phase}")
        table.add_column("epoch")
        table.add_column("leader")
        table.add_column("test acc")
        for node in swarm_env.nodes:
            table.add_column(names[node.address] + "\nsmoothed credit / tokens")
        for view in views[-12:]:
            cells = []
            for node in swarm_env.nodes:
                if node.address not in view.payouts:
                    cells.append("-")
                    continue
                mark = " forfeit" if node.address in view.forfeited else \
                    "" if node.address in view.standing else " unpaid" if not view.payouts[node.address] else " partial"
                tokens = wei_to_tokens(view.payouts[node.address])
                cells.append(f"{view.smoothed[node.address]:+.4f} / {tokens:.1f}{mark}")
            table.add_row(str(view.epoch), names.get(view.leader, "-"),
                          "-" if view.accuracy is None else f"{view.accuracy:.4f}", *cells)
        return table

    with Live(render(), console=swarm_env.console, refresh_per_second=2) as live:
        while True:
            current = int(swarm.currentEpoch())
            finished = bool(swarm.finished())
            for epoch in range(1, current + (1 if finished else 0)):
                if epoch in done:
                    continue
                record = read_epoch(swarm, epoch, start_block)
                if record.settled_at is None and not record.abandoned:
                    continue
                view = EpochView(epoch, leader=record.leader, skipped=record.skipped)
                if record.settled_at is not None:
                    view.accuracy = evaluate_merge(record, swarm.baseUriOf(record.leader), split, model, reference)
                    view.metric = None if record.median_metric is None else record.median_metric / METRIC_SCALE
                    for outcome in record.outcomes:
                        view.scores[outcome.node] = outcome.score / SCORE_SCALE
                        view.smoothed[outcome.node] = outcome.smoothed / SCORE_SCALE
                        if outcome.standing:
                            view.standing.append(outcome.node)
                        view.payouts[outcome.node] = outcome.payout
                        if outcome.forfeited:
                            view.forfeited.append(outcome.node)
                    view.reports = {r.reporter: r.metric / METRIC_SCALE for r in record.reports}
                views.append(view)
                done.add(epoch)
                (swarm_env.out / "epochs").mkdir(exist_ok=True)
                (swarm_env.out / "epochs" / f"epoch-{epoch:03d}.json").write_text(json.dumps(asdict(view), indent=2))
            live.update(render())
            if finished:
                return views
            if time.monotonic() > deadline:
                raise LocalChainError(f"the swarm did not finish within {timeout_s:.0f} s; see {swarm_env.out}/node-*/node.log")
            if not any(node.alive() for node in swarm_env.nodes):
                raise LocalChainError(f"every node process exited; see {swarm_env.out}/node-*/node.log")
            time.sleep(0.5)


def wait_for_claims(swarm_env: LocalSwarm, timeout_s: float = 60.0) -> None:
    swarm = swarm_env.handles.swarm
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = [n for n in swarm_env.nodes if n.alive() and int(swarm.claimable(n.address)) > 0]
        if not pending:
            return
        time.sleep(0.5)


def plot(out: Path, views: list[EpochView], swarm_env: LocalSwarm) -> None:
    """accuracy.png (merged model on the test set, each node's validation metric) and
    rewards.png (cumulative tokens earned per node, above each node's smoothed score, the
    evidence its score share and good standing follow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def label(ax: Any, ylabel: str) -> None:
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)

    settled = [v for v in views if v.accuracy is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([v.epoch for v in settled], [v.accuracy for v in settled], "k-o", label="merged model (test set)")
    for node in swarm_env.nodes:
        points = [(v.epoch, v.reports[node.address]) for v in settled if node.address in v.reports]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, "--", alpha=0.7, label=f"{node.label} validation")
    label(ax, "accuracy")
    save(fig, "accuracy.png")

    fig, (tokens, smoothed) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    for node in swarm_env.nodes:
        earned = [v.payouts.get(node.address, 0) for v in views]
        totals = [float(wei_to_tokens(sum(earned[: i + 1]))) for i in range(len(earned))]
        tokens.plot([v.epoch for v in views], totals, "-o", label=node.label)
        points = [(v.epoch, v.smoothed[node.address]) for v in views if node.address in v.smoothed]
        if points:
            xs, ys = zip(*points)
            smoothed.plot(xs, ys, "-o", label=node.label)
    smoothed.axhline(0.0, color="grey", linewidth=0.8)
    label(tokens, "cumulative tokens earned")
    label(smoothed, "smoothed score")
    save(fig, "rewards.png")


def run_demo(options: DemoOptions, timeout_s: float = 900.0, dashboard: bool = False) -> dict[str, Any]:
    """Run the whole demo and return (and write) the summary. ``dashboard``: serve the
    dashboard of the demo's swarm from deployment on (its URL printed), and after the
    summary keep the chain and the page up until Ctrl-C."""
    import torch

    from trainer.data import load_dataset, split_swarm
    from trainer.models import build_model
    from trainer.simulate import centralized, local_only, simulate
    from trainer.training import TrainConfig

    from ..audit import audit_swarm
    from ..chain.ledger import read_ledger
    from .views import earned_by, forfeited_by

    torch.set_num_threads(1)
    console = Console()
    out = Path(options.out)
    prepare_out(out)
    split = split_swarm(load_dataset(options.dataset, seed=options.seed), options.nodes, partition="dirichlet",
                        alpha=options.alpha, seed=options.seed)
    model = build_model("mlp", split.n_features, split.n_classes, options.seed)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    started = time.monotonic()
    with LocalSwarm(options, console) as env:
        console.print(f"[bold]starting chain on 127.0.0.1:{options.port}, deploying, creating {options.nodes} nodes")
        env.start_chain()
        env.deploy()
        board = start_dashboard(env, console) if dashboard else None
        env.create_nodes()
        env.start_nodes()
        views = watch(env, split, model, reference, timeout_s)
        wait_for_claims(env)
        swarm, token = env.handles.swarm, env.handles.token
        report = audit_swarm(swarm, token, from_block=int(env.handles.record["block"]), check_files=True)
        ledger = read_ledger(swarm, int(env.handles.record["block"]))
        earned, forfeited = earned_by(ledger), forfeited_by(ledger)
        claimed: dict[str, int] = {}
        for account, amount in ledger.claims:
            claimed[account] = claimed.get(account, 0) + amount
        epochs_run = len([v for v in views if v.accuracy is not None])
        train = TrainConfig()
        local = local_only(split, epochs=epochs_run, train=train, seed=options.seed)
        central = centralized(split, epochs=epochs_run, train=train, seed=options.seed)
        simulated = simulate(split, options.nodes, epochs_run, merge=options.merge, scorer=None,
                             attack=options.attack if options.rogue else None, rogue_ids=options.rogue_ids,
                             train=train, seed=options.seed)
        final = next((v.accuracy for v in reversed(views) if v.accuracy is not None), None)
        summary = {
            "options": asdict(options),
            "epochs_settled": epochs_run,
            "global_accuracy": final,
            "centralized_accuracy": float(central.accuracy),
            "simulator_accuracy": float(simulated.final.accuracy),
            "audit_ok": report.ok,
            "audit_checks": report.checks,
            "audit_discrepancies": report.discrepancies,
            "audit_findings": report.findings,
            "files_verified": report.files_checked,
            "seconds": round(time.monotonic() - started, 1),
            "nodes": [
                {
                    "address": node.address,
                    "rogue": node.rogue,
                    "attack": options.attack if node.index in options.rogue_ids else options.protocol_attack_of(node.index),
                    "local_accuracy": float(local[node.index].accuracy),
                    "swarm_accuracy": final,
                    "earned": earned.get(node.address, 0),
                    "forfeited": forfeited.get(node.address, 0),
                    "claimed": claimed.get(node.address, 0),
                    **standing_record(views, node.address),
                }
                for node in env.nodes
            ],
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        plot(out, views, env)
        if board is not None:
            print_summary(console, summary)
            console.print(f"the demo is over; its chain and the dashboard at {board.url} stay up until Ctrl-C")
            board.hold()
    if board is None:
        print_summary(console, summary)
    return summary


def start_dashboard(env: LocalSwarm, console: Console) -> Any:
    """Serve `swarm dashboard` for the demo's swarm on a free port, from this process (it
    reads the chain through the demo's own connection), and open it where there is a desktop."""
    from ..dashboard.server import Dashboard, open_in_browser
    from ..dashboard.source import ChainSource

    board = Dashboard(ChainSource(env.handles.swarm, int(env.handles.record["block"])), port=0)
    url = board.start()
    console.print(f"[bold]dashboard: {url}", soft_wrap=True)
    open_in_browser(url)
    return board


def standing_record(views: list[EpochView], address: str) -> dict[str, Any]:
    """What the payouts of ``address`` followed: its smoothed score after the last epoch it
    was settled in (``None`` if never), and in how many settled epochs it took part and
    stood well."""
    settled_in = [v for v in views if address in v.smoothed]
    return {
        "smoothed_score": settled_in[-1].smoothed[address] if settled_in else None,
        "epochs_settled_in": len(settled_in),
        "epochs_in_standing": sum(address in v.standing for v in settled_in),
    }


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    """The final table: per node, accuracy, tokens earned (and their share of all tokens
    earned), the smoothed score the payouts followed, the epochs in good standing, what a
    suspension forfeited and what was claimed."""
    table = Table(title=f"Swarm demo: {summary['epochs_settled']} epochs in {summary['seconds']} s")
    for column in ("node", "rogue", "local-only acc", "swarm acc", "earned", "share", "smoothed score",
                   "in standing", "forfeited", "claimed"):
        table.add_column(column)
    total = sum(node["earned"] for node in summary["nodes"])
    for i, node in enumerate(summary["nodes"]):
        smoothed = "-" if node["smoothed_score"] is None else f"{node['smoothed_score']:+.5f}"
        table.add_row(f"node-{i} {node['address'][:10]}", node["attack"],
                      f"{node['local_accuracy']:.4f}", f"{node['swarm_accuracy']:.4f}",
                      f"{wei_to_tokens(node['earned']):.2f}", f"{node['earned'] / total:.1%}" if total else "-",
                      smoothed, f"{node['epochs_in_standing']}/{node['epochs_settled_in']} epochs",
                      f"{wei_to_tokens(node['forfeited']):.2f}", f"{wei_to_tokens(node['claimed']):.2f}")
    console.print(table)
    console.print(f"global accuracy {summary['global_accuracy']:.4f}; centralized {summary['centralized_accuracy']:.4f}; "
                  f"in-process simulator {summary['simulator_accuracy']:.4f}")
    verdict = "[green]audit ok[/green]" if summary["audit_ok"] else f"[red]audit FAILED: {summary['audit_discrepancies'][0]}"
    console.print(f"{verdict} ({summary['audit_checks']} checks, {summary['files_verified']} files verified)")
    for finding in summary["audit_findings"]:
        console.print(f"audit finding: {finding}")
