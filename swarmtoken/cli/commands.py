"""The `swarm` command line. Commands import heavy libraries (brownie, torch) inside
their bodies so `swarm --help`, `--version` and `doctor` stay fast, and every user
mistake becomes one line that says what to do, with a non-zero exit and no traceback."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

import click

from .. import __version__
from ..config import SwarmConfig
from ..node.protocol_attacks import PROTOCOL_ATTACKS

DEFAULT_DEPLOYMENT = "deployments/development.json"
CHAIN_DIR = Path(".swarm")


class UserError(click.ClickException):
    """A mistake the user can fix: every line of the message (one per problem) is printed
    as an error, and the exit status is 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        for line in self.format_message().splitlines() or [""]:
            click.echo(f"Error: {line}", file=file, err=file is None)


def _debug() -> bool:
    """Whether `swarm --debug` was given: show tracebacks instead of one-line errors."""
    context = click.get_current_context(silent=True)
    return bool(context is not None and context.find_root().params.get("debug"))


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's user-facing errors into one line per problem with exit status 2
    (a user error), and any other failure into one line with exit status 1; `swarm --debug`
    lets the exception and its traceback through instead."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..chain.connection import ChainError
        from ..config import ConfigError
        from ..chain.deployment import DeploymentRecordError
        from ..chain.localchain import LocalChainError
        from ..node.errors import NodeError

        user_errors = (ChainError, ConfigError, DeploymentRecordError, LocalChainError, NodeError)
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.Abort, click.exceptions.Exit):
            raise
        except user_errors as exc:
            if _debug():
                raise
            raise UserError(str(exc)) from None
        except Exception as exc:
            if _debug():
                raise
            raise click.ClickException(f"unexpected {type(exc).__name__}: {exc}; run the command again as "
                                       "`swarm --debug ...` to see the traceback") from None

    return wrapper


def network_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--network", default=None,
                           help="brownie network id (`brownie networks list`); default: the deployment record's, "
                                "else development")(command)
    command = click.option("--port", type=int, default=None,
                           help="port of the local chain (local networks only); default: the deployment record's, "
                                "else the one `swarm chain up` started from this folder, else 8545")(command)
    return command


def deployment_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--deployment", "deployment_path", default=DEFAULT_DEPLOYMENT, show_default=True,
                        type=click.Path(dir_okay=False), help="deployment record written by `swarm deploy`")(command)


def keystore_option(required: bool) -> Callable[..., Any]:
    return click.option("--keystore", type=click.Path(dir_okay=False), required=required,
                        help="encrypted keystore of the account (password: SWARM_KEYSTORE_PASSWORD or prompt)")


def _connect_and_bind(network: str | None, port: int | None, deployment_path: str) -> Any:
    """Connect to the chain the deployment record names (``--network``/``--port`` override
    it) and bind its contracts, refusing a chain that is not the record's."""
    from ..chain.connection import bind, connect, resolve_endpoint
    from ..chain.deployment import DeploymentRecordError, read_record

    try:
        record = read_record(deployment_path)
    except DeploymentRecordError:
        record = None  # `bind` says what is wrong with it, once the chain is reached
    network, port, origin = resolve_endpoint(network, port, record, deployment_path)
    connect(network, port, origin=origin)
    return bind(deployment_path)


def _admin(network: str | None, keystore: str | None) -> Any:
    """The consortium admin: an unlocked keystore, or the local chain's first account.
    ``network`` None: the network connected to."""
    from ..chain.connection import ChainError, load_account

    if network is None:
        from brownie import network as brownie_network

        network = brownie_network.show_active()
    if keystore:
        return load_account(keystore)
    if network != "development":
        raise ChainError("pass --keystore with the admin's keystore on networks other than development")
    from brownie import accounts

    return accounts[0]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="swarm")
@click.option("--debug", is_flag=True, help="show the traceback of a failure instead of one line per problem")
def main(debug: bool) -> None:
    """Swarm: decentralized swarm learning with on-chain contribution rewards."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")


@main.command()
def doctor() -> None:
    """Check the toolchain (Python deps, node, anvil, compiler adapter, build) and print
    the command that fixes anything missing."""
    from rich.console import Console
    from rich.table import Table

    from .doctor import run_checks

    checks = run_checks()
    table = Table(title="swarm doctor")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column)
    for check in checks:
        status = "[green]ok[/green]" if check.ok else "[red]missing[/red]"
        table.add_row(check.name, status, check.detail, check.fix)
    Console().print(table)
    failed = [c for c in checks if not c.ok]
    if failed:
        fixes = sorted({c.fix for c in failed if c.fix})
        raise click.ClickException(f"{len(failed)} check(s) failed; run: {' ; '.join(fixes)}")
    click.echo("All checks passed.")


# ---------------------------------------------------------------------- local chain
@main.group()
def chain() -> None:
    """Run a local anvil chain whose state survives `down` / `up` and crashes."""


@chain.command("up")
@click.option("--port", type=int, default=8545, show_default=True)
@click.option("--state", "state_file", type=click.Path(dir_okay=False), default=str(CHAIN_DIR / "chain-state.json"),
              show_default=True, help="file the chain's state is kept in (written before any change is answered)")
@friendly
def chain_up(port: int, state_file: str) -> None:
    from ..chain.durable import start

    CHAIN_DIR.mkdir(exist_ok=True)
    process = start(port, Path(state_file), log_file=CHAIN_DIR / "anvil.log")
    # where it listens: `swarm deploy` run from this folder deploys there by default
    (CHAIN_DIR / "chain.json").write_text(json.dumps({"pid": process.pid, "port": port, "state": state_file,
                                                      "network": "development",
                                                      "rpc_url": f"http://127.0.0.1:{port}"}))
    click.echo(f"local chain running on 127.0.0.1:{port} (pid {process.pid}); state in {state_file}")


@chain.command("down")
@friendly
def chain_down() -> None:
    from ..chain.localchain import LocalChainError, stop_pid

    info_path = CHAIN_DIR / "chain.json"
    if not info_path.exists():
        raise LocalChainError("no local chain was started from this folder (`swarm chain up` starts one)")
    info = json.loads(info_path.read_text())
    stop_pid(int(info["pid"]))
    info_path.unlink()
    click.echo(f"local chain stopped; state kept in {info['state']}")


# ---------------------------------------------------------------------- admin
@main.command()
@click.option("--config", "config_path", default="config/swarm.toml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--out", default=DEFAULT_DEPLOYMENT, show_default=True, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="overwrite an existing deployment record (its swarm is forgotten)")
@keystore_option(required=False)
@network_options
@friendly
def deploy(config_path: str, out: str, force: bool, keystore: str | None, network: str | None,
           port: int | None) -> None:
    """Deploy the token and the swarm contract, and write the deployment record (with the
    chain's endpoint and id, which later commands connect to by default). Without
    --network/--port it deploys to the chain `swarm chain up` started from this folder."""
    from ..chain.connection import connect, load_project, resolve_endpoint
    from ..config import SwarmConfig
    from ..chain.deployment import deploy as deploy_contracts
    from ..chain.deployment import refuse_overwrite, write_record

    if not force:
        refuse_overwrite(out)
    config = SwarmConfig.from_toml(config_path)
    network, port, origin = resolve_endpoint(network, port)
    endpoint = connect(network, port, origin=origin)
    from brownie import chain as brownie_chain

    deployment = deploy_contracts(load_project(), config, _admin(network, keystore))
    write_record(out, network=network, chain_id=brownie_chain.id, deployment=deployment, config=config,
                 endpoint=endpoint, overwrite=force)
    where = endpoint.get("rpc_url", f"network {network}")
    click.echo(f"SwarmToken {deployment.token.address}\nSwarmLearning {deployment.swarm.address}\n"
               f"record {out} (chain {where}, id {brownie_chain.id})")


@main.command()
@click.argument("address")
@click.option("--samples", type=click.IntRange(1, 2**64 - 1), required=True,
              help="the sample allowance the consortium attests for this member: declared counts above it count as it")
@click.option("--expiry", type=int, default=0, show_default=True, help="unix time the authorisation ends (0 = never)")
@keystore_option(required=False)
@deployment_option
@network_options
@friendly
def authorize(address: str, samples: int, expiry: int, keystore: str | None, deployment_path: str, network: str,
              port: int | None) -> None:
    """Allow-list ADDRESS with its attested sample allowance so it can enrol as a node
    (consortium admin only)."""
    from eth_utils import is_address, to_checksum_address

    if not is_address(address):
        raise click.BadParameter(f"{address!r} is not an Ethereum address", param_hint="ADDRESS")
    handles = _connect_and_bind(network, port, deployment_path)
    admin = _admin(network, keystore)
    _transact(handles.swarm, "authorize", to_checksum_address(address), expiry, samples, sender=admin)
    click.echo(f"{to_checksum_address(address)} may now enrol with an allowance of {samples} samples"
               + (f" until {expiry}" if expiry else ""))


@main.group()
def account() -> None:
    """Encrypted keystores for node and admin accounts."""


@account.command("new")
@click.argument("path", type=click.Path(dir_okay=False))
@friendly
def account_new(path: str) -> None:
    """Create a new account in an encrypted keystore at PATH."""
    import os

    from ..chain.connection import PASSWORD_ENV, create_keystore

    if Path(path).exists():
        raise click.ClickException(f"{path} exists; refusing to overwrite a keystore")
    password = os.environ.get(PASSWORD_ENV) or click.prompt("new password", hide_input=True, confirmation_prompt=True)
    click.echo(create_keystore(path, password))


# ---------------------------------------------------------------------- node
@main.command()
@click.argument("folder", type=click.Path(file_okay=False))
@deployment_option
@click.option("--shard", type=click.IntRange(0), help="this node's share of the bundled dataset (with --shards)")
@click.option("--shards", type=click.IntRange(1), help="how many shares the dataset is dealt into: the node count")
@click.option("--data-file", type=click.Path(dir_okay=False, exists=True),
              help="the node's own .csv/.npz instead of a dataset share")
@click.option("--store-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="the port the node serves its files on (0: any free one)")
@click.option("--force", is_flag=True, help="overwrite the folder's node.toml (the keystore is never overwritten)")
@friendly
def init(folder: str, deployment_path: str, shard: int | None, shards: int | None, data_file: str | None,
         store_port: int, force: bool) -> None:
    """Write a node folder for the swarm of the deployment record: node.toml (every key
    shown, with what it does), a new keystore and the store folder; then print the
    address to authorise and the command that starts the node."""
    import os

    from ..chain.connection import PASSWORD_ENV, create_keystore
    from ..chain.deployment import read_record
    from ..config import ConfigError
    from ..node.checks import check_node_file
    from ..node.template import node_template

    root, record_path = Path(folder), Path(deployment_path)
    config_path = root / "node.toml"
    if config_path.exists() and not force:
        raise ConfigError(f"{config_path} exists; pass --force to overwrite it")
    if (shard is None) != (shards is None) or (shard is not None and data_file):
        raise click.UsageError("give --shard and --shards together (a dataset share), or --data-file")
    if shard is not None and shard >= shards:
        raise click.BadParameter(f"--shard must be below --shards ({shards})", param_hint="--shard")
    read_record(record_path)  # refuse a missing or malformed record before writing anything
    root.mkdir(parents=True, exist_ok=True)
    keystore = root / "keystore.json"
    if keystore.exists():
        from eth_utils import to_checksum_address

        address = to_checksum_address(json.loads(keystore.read_text())["address"])
        click.echo(f"keeping the existing keystore {keystore}")
    else:
        password = os.environ.get(PASSWORD_ENV) or click.prompt("new keystore password", hide_input=True,
                                                                confirmation_prompt=True)
        address = create_keystore(keystore, password)
    (root / "store").mkdir(exist_ok=True)
    data: dict[str, Any] = {"file": os.path.relpath(data_file, root)} if data_file else \
        ({"shard": shard, "shards": shards} if shard is not None else {})
    values = {"chain": {"deployment": os.path.relpath(record_path, root), "keystore": "keystore.json"},
              "store": {"dir": "store", **({"port": store_port} if store_port else {})}, "data": data}
    config_path.write_text(node_template(values))
    checked = check_node_file(config_path)
    samples = checked.local.node.n_train
    click.echo(f"wrote {config_path} for node {address} ({samples} training samples)\n"
               f"next: the admin runs `swarm authorize {address} --samples {samples}`, then start the node with "
               f"`swarm train --config {config_path}`")


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="node config (TOML)")
@friendly
def train(config_path: str) -> None:
    """Run one node: enrol if needed, then take part epoch after epoch until the swarm stops.
    Everything on this machine (the config's keys, the data, the files, the store's port)
    is checked first, and every problem reported, before the chain or the key is touched.

    `swarm init FOLDER` writes a node.toml showing every key with what it does (the same
    list is in swarmtoken/node/config.py). At the finish the node claims its tokens itself
    ([node] claim_at_finish), so a later `swarm claim` finds nothing left to claim."""
    from ..chain.connection import bind, connect, load_account
    from ..node.checks import check_node_file
    from ..node.runtime import Node

    config = check_node_file(config_path).config
    connect(config.chain.network, config.chain.rpc_port)
    handles = bind(config.path(config.chain.deployment))
    account = load_account(config.path(config.chain.keystore))
    Node(config, account, handles).run()


# ---------------------------------------------------------------------- views
@main.command()
@deployment_option
@network_options
@friendly
def status(deployment_path: str, network: str, port: int | None) -> None:
    """Epoch, phase, leader, members and deadlines."""
    from rich.console import Console

    from .views import status_table

    handles = _connect_and_bind(network, port, deployment_path)
    Console().print(status_table(handles))


@main.command()
@keystore_option(required=False)
@click.option("--address", default=None, help="account to show (default: the keystore's)")
@deployment_option
@network_options
@friendly
def rewards(keystore: str | None, address: str | None, deployment_path: str, network: str, port: int | None) -> None:
    """Tokens earned, claimed and claimable for an account."""
    from rich.console import Console

    from .views import rewards_table

    handles = _connect_and_bind(network, port, deployment_path)
    if address is None:
        if keystore is None:
            raise click.UsageError("pass --keystore or --address")
        from ..chain.connection import keystore_address

        address = keystore_address(keystore)
    Console().print(rewards_table(handles, address))


@main.command()
@keystore_option(required=True)
@deployment_option
@network_options
@friendly
def claim(keystore: str, deployment_path: str, network: str, port: int | None) -> None:
    """Transfer all of the account's credited tokens to it (after two clean epochs, or at
    the finish)."""
    from ..chain.connection import ChainError, load_account
    from ..units import wei_to_tokens
    from .views import claim_refusal

    handles = _connect_and_bind(network, port, deployment_path)
    sender = load_account(keystore)
    refusal = claim_refusal(handles.swarm, sender.address, int(handles.record["block"]))
    if refusal:
        raise ChainError(refusal)
    amount = int(handles.swarm.claimable(sender.address))
    _transact(handles.swarm, "claim", sender=sender)
    click.echo(f"claimed {wei_to_tokens(amount)} tokens to {sender.address}")


@main.command()
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout (per-participant rows, or with --membership "
              "the membership changes)")
@click.option("--json", "as_json", is_flag=True, help='JSON on stdout: {"epochs": [per-participant rows], '
              '"membership": [changes]}')
@click.option("--membership", "membership_only", is_flag=True,
              help="only the membership changes (suspensions with their strikes, removals, expiries, departures, "
                   "enrolments, authorisations)")
@deployment_option
@network_options
@friendly
def ledger(as_csv: bool, as_json: bool, membership_only: bool, deployment_path: str, network: str,
           port: int | None) -> None:
    """Per epoch: participants, hashes, leader, scores, smoothed scores, standing, payouts and
    forfeits with their reason; then every membership change in chain order (a suspension
    with the epoch and strikes behind it), from events."""
    from ..chain.ledger import read_ledger
    from .views import MEMBERSHIP_FIELDS, ledger_rows, membership_rows, print_ledger, print_membership

    if as_csv and as_json:
        raise click.UsageError("pass --csv or --json, not both")
    handles = _connect_and_bind(network, port, deployment_path)
    ledger = read_ledger(handles.swarm, int(handles.record["block"]))
    rows, changes = ledger_rows(ledger), membership_rows(ledger)
    if as_json:
        click.echo(json.dumps(changes if membership_only else {"epochs": rows, "membership": changes}, indent=2))
    elif as_csv:
        import csv
        import sys

        fields = list(MEMBERSHIP_FIELDS) if membership_only else list(rows[0]) if rows else ["epoch"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields)
        writer.writeheader()
        writer.writerows(changes if membership_only else rows)
    else:
        if not membership_only:
            print_ledger(rows)
        print_membership(changes)


@main.command()
@click.option("--no-files", is_flag=True, help="skip fetching parameter files")
@click.option("--all", "list_all", is_flag=True, help="list every discrepancy, one line each, not only the first")
@deployment_option
@network_options
@friendly
def audit(no_files: bool, list_all: bool, deployment_path: str, network: str, port: int | None) -> None:
    """Recompute every settlement and check supply, credits and files; exits non-zero
    naming the first discrepancy (with --all, listing every one)."""
    from ..audit import audit_swarm

    handles = _connect_and_bind(network, port, deployment_path)
    report = audit_swarm(handles.swarm, handles.token, from_block=int(handles.record["block"]),
                         check_files=not no_files)
    click.echo(report.summary())
    for finding in report.findings:
        click.echo(f"finding: {finding}")
    if not report.ok:
        if list_all:
            for line in report.discrepancy_lines():
                click.echo(line)
        raise click.ClickException(report.failure(listed=list_all))
    if report.files_checked == 0:
        reason = "--no-files" if no_files else "none of the nodes' stores could be reached"
        click.echo(f"audit ok for the chain: every payout matches the reference rule and every token is "
                   f"accounted for; 0 files verified ({reason}), so no commitment or model file was checked")
        return
    click.echo("audit ok: every payout matches the reference rule and every token is accounted for")


def _transact(contract: Any, method: str, *args: Any, sender: Any) -> Any:
    from brownie.exceptions import VirtualMachineError

    from ..chain.connection import ChainError

    try:
        return getattr(contract, method)(*args, {"from": sender}, silent=True)
    except VirtualMachineError as exc:
        raise ChainError(f"the contract refused {method}: {exc.revert_msg}") from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address the page is served on")
@click.option("--http-port", "http_port", type=click.IntRange(0, 65535), default=8600, show_default=True,
              help="port the page is served on (0: any free port)")
@click.option("--open", "open_browser", is_flag=True, help="open the page in this desktop's browser")
@deployment_option
@network_options
@friendly
def dashboard(host: str, http_port: int, open_browser: bool, deployment_path: str, network: str,
              port: int | None) -> None:
    """A read-only local web page for a running or finished swarm, from chain events: epoch
    and phase, members (suspensions included), leaders, accuracy, per-node scores and
    payouts per epoch, disputes and forfeits, the ledger with CSV download; it updates live.
    Serves until Ctrl-C."""
    from ..dashboard.server import Dashboard, open_in_browser
    from ..dashboard.source import ChainSource

    handles = _connect_and_bind(network, port, deployment_path)
    board = Dashboard(ChainSource(handles.swarm, int(handles.record["block"])), host, http_port)
    try:
        url = board.start()
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{http_port} ({exc.strerror or exc}); pick another --http-port") \
            from None
    click.echo(f"dashboard of swarm {handles.swarm.address} at {url} (read-only; Ctrl-C to stop)")
    if open_browser:
        open_in_browser(url)
    board.hold()


@main.command()
@click.option("--nodes", default=5, show_default=True, help="number of node processes")
@click.option("--rogue", default=1, show_default=True, help="how many of them are rogue")
@click.option("--attack", default="sign_flip", show_default=True, help="the rogues' attack")
@click.option("--protocol-attack", "protocol_attacks", multiple=True,
              help="add a node that attacks the protocol (repeatable): " + ", ".join(PROTOCOL_ATTACKS))
@click.option("--merge", default=SwarmConfig.merge_rule, show_default=True, help="merge rule")
@click.option("--scorer", default=SwarmConfig.scorer, show_default=True, help="contribution scorer")
@click.option("--dataset", default="digits", show_default=True)
@click.option("--alpha", default=0.5, show_default=True, help="Dirichlet label-skew concentration")
@click.option("--epochs", default=10, show_default=True, help="maximum epochs (the stopping rule)")
@click.option("--seed", default=0, show_default=True)
@click.option("--port", default=8545, show_default=True, help="port of the embedded chain")
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--dashboard", "with_dashboard", is_flag=True,
              help="serve `swarm dashboard` for the demo (its URL is printed) and keep the chain up after the "
                   "demo until Ctrl-C")
@friendly
def demo(with_dashboard: bool, **options: Any) -> None:
    """Run a whole local swarm: embedded chain, N node processes, live view, audit."""
    from .demo import DemoOptions, run_demo

    options["protocol_attacks"] = tuple(options["protocol_attacks"])
    summary = run_demo(DemoOptions(**options), dashboard=with_dashboard)
    if not summary["audit_ok"]:
        raise click.ClickException("the audit found a discrepancy; see summary.json")


if __name__ == "__main__":
    main()
