"""A swarm across "machines": one network namespace for the chain, one per node.

Topology (X random per run, checked against every address and namespace in use):

    namespace swm<X>c  (the chain)   bridge swm<X>br, 10.231.X.1/24; anvil --host 10.231.X.1 --port 8545
    namespace swm<X>n<i> (node i)    veth swm<X>v<i>, 10.231.X.<10+i>/24; its peer swm<X>p<i> is a port of
                                     the bridge in the chain's namespace

Nothing is put in the root namespace: every veth pair is created with both ends already in
their namespaces, and the bridge lives in the chain's. The test process has no route to the
chain, so everything that talks to it (deploying, waiting on the chain, the audit) runs
inside the chain's namespace through `ip netns exec` (this module's ``_admin``, ``_wait``
and ``_inspect`` subcommands, and `swarm audit`).

How a node reaches the chain: a brownie *live* network ``swarm-multihost-<X>`` with host
``http://10.231.X.1:8545``, written into a private brownie data folder (the processes run
with ``HOME`` set to the run's folder, so the user's ``~/.brownie`` is never touched).
`swarmtoken.chain.connection.connect` only reaches a *local* (development) network on
127.0.0.1, so a live network id is the way to name a chain elsewhere. Each node's
``[chain] network`` is that id; its store binds its namespace address on a fixed port and
enrols with ``public_url = http://10.231.X.<10+i>:8700``.

The scenario (`MultiHost.run`): deploy, fund and allow-list the nodes, start them, wait until
epoch ``kill_in`` has its merge on chain (the Report phase), tear down the namespace and
veth of a participant that is not the leader while its process runs, and wait for the
swarm's stopping rule; then read every epoch, every member's base URI, and run the audit.
Everything it made (processes, namespaces, links) is removed at the end, also on failure.

    python -m tests.e2e.multihost run --work /tmp/multihost     # needs root and `ip netns`
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SWARM = str(Path(sys.executable).with_name("swarm"))
PASSWORD = "multihost-test-only"
#: anvil's first development account (its well-known mnemonic): the consortium admin here.
ADMIN_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
CHAIN_PORT = 8545
STORE_PORT = 8700
FUNDING = "100 ether"


def unavailable() -> str | None:
    """Why the harness cannot run here (one line), or None when it can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (network namespaces, veth pairs and a bridge)"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2)"
    probe = f"swmprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` fails here: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def pick_subnet() -> int:
    """A third octet X such that 10.231.X.0/24 and the names swm<X>* are unused here."""
    in_use = ip("-o", "addr").stdout + ip("-o", "link").stdout + ip("netns", "list").stdout
    for x in random.sample(range(1, 255), 254):
        if f"10.231.{x}." not in in_use and f"swm{x}" not in in_use:
            return x
    raise RuntimeError("no free 10.231.X.0/24 subnet")


@dataclass
class Topology:
    x: int
    nodes: int

    @property
    def chain_ns(self) -> str:
        return f"swm{self.x}c"

    @property
    def bridge(self) -> str:
        return f"swm{self.x}br"

    @property
    def chain_address(self) -> str:
        return f"10.231.{self.x}.1"

    @property
    def rpc_url(self) -> str:
        return f"http://{self.chain_address}:{CHAIN_PORT}"

    @property
    def network_id(self) -> str:
        return f"swarm-multihost-{self.x}"

    def node_ns(self, i: int) -> str:
        return f"swm{self.x}n{i}"

    def node_veth(self, i: int) -> str:
        return f"swm{self.x}v{i}"

    def bridge_port(self, i: int) -> str:
        return f"swm{self.x}p{i}"

    def node_address(self, i: int) -> str:
        return f"10.231.{self.x}.{10 + i}"

    def public_url(self, i: int) -> str:
        return f"http://{self.node_address(i)}:{STORE_PORT}"

    def namespaces(self) -> list[str]:
        return [self.chain_ns] + [self.node_ns(i) for i in range(self.nodes)]

    def prefix(self) -> str:
        return f"swm{self.x}"


@dataclass
class MultiHost:
    work: Path
    nodes: int = 4
    epochs: int = 4
    kill_in: int = 2
    seed: int = 3
    timeout_s: float = 1200.0
    topology: Topology = field(init=False)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, init=False)
    created: list[str] = field(default_factory=list, init=False)  # namespaces made (and not yet deleted)
    log: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.work = Path(self.work).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.topology = Topology(pick_subnet(), self.nodes)
        self.home = self.work / "home"

    def say(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} multihost: {message}"
        self.log.append(line)
        print(line, file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ network
    def create_network(self) -> None:
        t = self.topology
        for ns in t.namespaces():
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", t.chain_ns, "link", "add", t.bridge, "type", "bridge")
        ip("-n", t.chain_ns, "addr", "add", f"{t.chain_address}/24", "dev", t.bridge)
        ip("-n", t.chain_ns, "link", "set", t.bridge, "up")
        for i in range(self.nodes):
            # both ends created inside their namespaces: nothing ever appears in the root one
            ip("link", "add", t.node_veth(i), "netns", t.node_ns(i), "type", "veth",
               "peer", "name", t.bridge_port(i), "netns", t.chain_ns)
            ip("-n", t.chain_ns, "link", "set", t.bridge_port(i), "master", t.bridge)
            ip("-n", t.chain_ns, "link", "set", t.bridge_port(i), "up")
            ip("-n", t.node_ns(i), "addr", "add", f"{t.node_address(i)}/24", "dev", t.node_veth(i))
            ip("-n", t.node_ns(i), "link", "set", t.node_veth(i), "up")
        self.say(f"namespaces {', '.join(t.namespaces())} on 10.231.{t.x}.0/24 (bridge {t.bridge} in {t.chain_ns})")

    def tear_down_node(self, i: int) -> None:
        """Pull node ``i``'s cable and remove its machine's network: delete its veth pair and
        its namespace while its process runs (the process is left running, cut off)."""
        t = self.topology
        ip("-n", t.chain_ns, "link", "del", t.bridge_port(i))
        ip("netns", "delete", t.node_ns(i))
        self.created.remove(t.node_ns(i))
        self.say(f"tore down {t.node_ns(i)} ({t.node_address(i)}) and its veth")

    # ------------------------------------------------------------------ processes
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        path = [str(ROOT / "tools" / "bin"), str(Path(PYTHON).parent), str(ROOT / "node_modules" / ".bin")]
        env.update(HOME=str(self.home), SWARM_KEYSTORE_PASSWORD=PASSWORD, PYTHONPATH=str(ROOT),
                   PATH=os.pathsep.join(path + [env.get("PATH", "")]), PYTHONUNBUFFERED="1")
        env.setdefault("SOLCX_BINARY_PATH", str(ROOT / ".solcx"))
        for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(proxy, None)  # the chain and the stores are reached directly
        return env

    def spawn(self, name: str, ns: str, argv: list[str], cwd: Path, log: Path) -> subprocess.Popen:
        with log.open("ab") as out:
            process = subprocess.Popen(["ip", "netns", "exec", ns, *argv], cwd=cwd, env=self.env(), stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def in_chain_ns(self, argv: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
        name = f"job-{len(self.processes)}"
        process = subprocess.Popen(["ip", "netns", "exec", self.topology.chain_ns, *argv], cwd=cwd or ROOT,
                                   env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        self.processes[name] = process
        try:
            out, err = process.communicate(timeout=timeout)
        finally:
            stop(process)
            del self.processes[name]
        return subprocess.CompletedProcess(argv, process.returncode, out, err)

    def helper(self, *args: str, timeout: float = 300) -> dict[str, Any]:
        """Run one of this module's in-namespace subcommands in the chain's namespace."""
        done = self.in_chain_ns([PYTHON, "-m", "tests.e2e.multihost", *args, "--work", str(self.work),
                                 "--network", self.topology.network_id], timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed in {self.topology.chain_ns}:\n{done.stdout}\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    # ------------------------------------------------------------------ chain
    def write_brownie_home(self) -> None:
        """A private brownie data folder whose network-config adds the chain's live network."""
        import yaml

        import brownie

        default = Path(brownie.__file__).parent / "data" / "network-config.yaml"
        config = yaml.safe_load(default.read_text())
        t = self.topology
        config["live"] = [{"name": "Swarm multi-host test", "networks": [
            {"name": f"chain namespace {t.chain_ns}", "id": t.network_id, "host": t.rpc_url, "chainid": 31337}]}]
        folder = self.home / ".brownie"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "network-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        # brownie's settings for every live network, as for its development one: legacy
        # transactions at gas price 0 (anvil runs with a zero base fee), and a transaction
        # that would revert is sent anyway and reported as a revert (VirtualMachineError),
        # which is what the node and `deploy` expect of a refused transaction.
        (self.home / "brownie-config.yaml").write_text(yaml.safe_dump({"networks": {"live": {
            "gas_price": 0, "max_fee": None, "priority_fee": None, "gas_buffer": 1,
            "reverting_tx_gas_limit": "max"}}}))

    def anvil_argv(self) -> list[str]:
        from swarmtoken.chain.localchain import anvil_command

        argv = anvil_command(CHAIN_PORT)
        argv[argv.index("--host") + 1] = self.topology.chain_address  # its own address, not loopback
        # A block every second: on a live network brownie estimates gas on the latest block,
        # so a transaction that waits for a deadline to pass (electLeader, renounceRole) is
        # refused until some block is mined after it; on an idle chain none would be.
        return argv + ["--block-time", "1"]

    def start_chain(self) -> None:
        self.write_brownie_home()
        argv = self.anvil_argv()
        self.spawn("anvil", self.topology.chain_ns, argv, self.work, self.work / "anvil.log")
        self.say(f"anvil in {self.topology.chain_ns}: {' '.join(argv[1:])}")

    def deploy(self) -> dict[str, Any]:
        setup = self.helper("_admin", "--nodes", str(self.nodes), "--epochs", str(self.epochs),
                            "--seed", str(self.seed), "--x", str(self.topology.x))
        self.say(f"deployed {setup['swarm']}; {self.nodes} nodes funded and allow-listed")
        return setup

    # ------------------------------------------------------------------ nodes
    def start_nodes(self) -> dict[int, str]:
        """Start every node in its namespace; returns what `ip netns identify` says of each pid."""
        where: dict[int, str] = {}
        for i in range(self.nodes):
            folder = self.work / f"node-{i}"
            process = self.spawn(f"node-{i}", self.topology.node_ns(i), [SWARM, "train", "--config", "node.toml"],
                                 folder, folder / "node.log")
            deadline = time.monotonic() + 10
            while not where.get(i) and time.monotonic() < deadline:  # until `ip netns exec` has entered it
                where[i] = ip("netns", "identify", str(process.pid), check=False).stdout.strip()
                time.sleep(0.05)
        self.say(f"nodes started: {where}")
        return where

    # ------------------------------------------------------------------ the scenario
    def run(self) -> dict[str, Any]:
        """Everything up to the audit; the caller must call `cleanup` (also on failure)."""
        started = time.monotonic()
        self.create_network()
        self.start_chain()
        setup = self.deploy()
        where = self.start_nodes()
        moment = self.helper("_wait", "--until", "report", "--epoch", str(self.kill_in),
                             "--timeout", str(self.timeout_s), timeout=self.timeout_s + 60)
        index = {n["address"]: n["index"] for n in setup["nodes"]}
        candidates = [a for a in moment["participants"] if a != moment["leader"]]
        if not candidates or moment["phase"] != "Report":
            raise RuntimeError(f"epoch {self.kill_in} was not caught mid-epoch with a participant to cut: {moment}")
        victim = index[candidates[-1]]
        victim_alive = self.processes[f"node-{victim}"].poll() is None
        self.tear_down_node(victim)
        finished = self.helper("_wait", "--until", "finished", "--timeout", str(self.timeout_s),
                               timeout=self.timeout_s + 60)
        # let the survivors adopt the last model and claim before reading everything back
        time.sleep(5)
        chain = self.helper("_inspect", "--nodes", str(self.nodes), "--x", str(self.topology.x))
        audit = self.in_chain_ns([SWARM, "audit", "--deployment", "deployment.json"], 300, cwd=self.work)
        codes = {i: self.processes[f"node-{i}"].poll() for i in range(self.nodes)}
        logs = {i: (self.work / f"node-{i}" / "node.log").read_text(errors="replace") for i in range(self.nodes)}
        configs = {i: (self.work / f"node-{i}" / "node.toml").read_text() for i in range(self.nodes)}
        self.say(f"swarm finished at epoch {finished['epoch']}; audit exit {audit.returncode}; "
                 f"{time.monotonic() - started:.0f} s")
        return {"topology": {"x": self.topology.x, "chain_address": self.topology.chain_address,
                             "rpc_url": self.topology.rpc_url, "network": self.topology.network_id,
                             "namespaces": self.topology.namespaces(),
                             "node_addresses": [self.topology.node_address(i) for i in range(self.nodes)]},
                "setup": setup, "namespaces_of_nodes": where, "moment": moment, "victim": victim,
                "victim_address": candidates[-1], "victim_alive_at_teardown": victim_alive, "finished": finished,
                "chain": chain, "audit": {"code": audit.returncode, "out": audit.stdout, "err": audit.stderr},
                "codes_before_cleanup": codes, "logs": logs, "configs": configs,
                "network_config": (self.home / ".brownie" / "network-config.yaml").read_text(),
                "record": json.loads((self.work / "deployment.json").read_text()),
                "seconds": time.monotonic() - started}

    def cleanup(self) -> list[str]:
        """Stop every process started, delete every namespace made (its veths and the bridge
        go with it); returns what is left over (empty when all is gone)."""
        for process in self.processes.values():
            stop(process)
        self.processes.clear()
        for ns in list(self.created):
            # whatever still runs in a namespace of ours was started by us (through ip netns exec)
            for pid in ip("netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            ip("netns", "delete", ns, check=False)
            self.created.remove(ns)
        # loading the project on a live network makes an empty build/deployments/<chain id>
        # and a "{}" map.json; remove them when they are still empty
        folder = ROOT / "build" / "deployments"
        for empty in (folder / "31337", folder / "map.json", folder):
            try:
                if empty.is_dir() and not any(empty.iterdir()):
                    empty.rmdir()
                elif empty.is_file() and empty.read_text().strip() == "{}":
                    empty.unlink()
            except OSError:
                pass
        return self.leftovers()

    def leftovers(self) -> list[str]:
        prefix = self.topology.prefix()
        left = [f"namespace {line.split()[0]}" for line in ip("netns", "list").stdout.splitlines()
                if line.split() and line.split()[0].startswith(prefix)]
        left += [f"link {line.split(':')[1].strip()}" for line in ip("-o", "link").stdout.splitlines()
                 if line.split(":")[1].strip().split("@")[0].startswith(prefix)]
        left += [f"address {line}" for line in ip("-o", "addr").stdout.splitlines()
                 if f"10.231.{self.topology.x}." in line]
        return left


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a process started with its own session (and its children, e.g. anvil's launcher's)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


# ---------------------------------------------------------------------- inside the chain's namespace
def _connect(network: str, timeout: float = 60.0) -> None:
    from swarmtoken.chain.connection import ChainError, connect

    deadline = time.monotonic() + timeout
    while True:
        try:
            connect(network)
            return
        except ChainError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _bind(work: Path) -> Any:
    from swarmtoken.chain.connection import bind

    return bind(work / "deployment.json")


def _admin(args: argparse.Namespace) -> dict[str, Any]:
    """Deploy the swarm, then per node: a keystore, funding, allow-listing with its true
    sample count, and its node.toml (store on its namespace address, enrolled by the node
    itself through `public_url`)."""
    from brownie import accounts, chain
    from brownie.network.contract import ProjectContract

    from swarmtoken.chain.connection import create_keystore, load_project
    from swarmtoken.chain.deployment import deploy, write_record
    from swarmtoken.cli.demo import DEMO_WORK_FACTOR, demo_key
    from swarmtoken.config import SwarmConfig
    from swarmtoken.node.config import ChainSection, DataSection, ModelSection, NodeConfig, NodeSection, StoreSection
    from swarmtoken.node.localdata import load_local_data
    from trainer.data import load_dataset

    work, t = Path(args.work), Topology(args.x, args.nodes)
    _connect(args.network)
    # On a live network brownie writes each deployment into the project's build/deployments:
    # keep the repository untouched (the deployment record is all the swarm needs).
    ProjectContract._deployment_path = lambda self: None
    admin = accounts.add(ADMIN_KEY)
    data = load_dataset("digits", seed=args.seed)
    config = SwarmConfig(min_peers=3, max_peers=16, commit_window=8, merge_window=30, report_window=30,
                         reward_per_epoch="1000", max_epochs=args.epochs, n_features=data.n_features,
                         n_classes=data.n_classes)
    deployment = deploy(load_project(), config, admin)
    write_record(work / "deployment.json", network=args.network, chain_id=chain.id, deployment=deployment,
                 config=config, endpoint={"network": args.network, "rpc_url": t.rpc_url})
    nodes = []
    for i in range(args.nodes):
        folder = work / f"node-{i}"
        address = create_keystore(folder / "keystore.json", PASSWORD, demo_key(args.seed, i), DEMO_WORK_FACTOR)
        admin.transfer(address, FUNDING, silent=True)
        node = NodeConfig(
            chain=ChainSection(network=args.network, deployment="../deployment.json", keystore="keystore.json"),
            store=StoreSection(dir="store", host=t.node_address(i), port=STORE_PORT, public_url=t.public_url(i)),
            data=DataSection(dataset="digits", shard=i, shards=args.nodes, seed=args.seed),
            model=ModelSection(),
            node=NodeSection(elect_grace=5.0, serve_after_finish=True, fetch_timeout=5.0, fetch_retries=2),
            base_dir=folder,
        )
        samples = load_local_data(node).node.n_train
        deployment.swarm.authorize(address, 0, samples, {"from": admin}, silent=True)
        (folder / "node.toml").write_text(node.to_toml())
        nodes.append({"index": i, "address": address, "samples": samples})
    return {"swarm": deployment.swarm.address, "token": deployment.token.address, "nodes": nodes}


def _wait(args: argparse.Namespace) -> dict[str, Any]:
    """Block until epoch ``--epoch`` has its merge on chain (``report``) or the swarm
    finished (``finished``); describe the moment."""
    from swarmtoken.chain.epochview import PHASES, read_epoch

    _connect(args.network)
    handles = _bind(Path(args.work))
    swarm, start = handles.swarm, int(handles.record["block"])
    deadline = time.monotonic() + args.timeout
    while True:
        if args.until == "finished":
            if bool(swarm.finished()):
                return {"epoch": int(swarm.currentEpoch())}
        else:
            epoch = args.epoch
            current = int(swarm.currentEpoch())
            state = PHASES[int(swarm.epochState(epoch)["phase"])] if current >= epoch else "Commit"
            if current > epoch or state != "Commit" and state != "Merge":
                record = read_epoch(swarm, epoch, start)
                return {"epoch": epoch, "current": current, "phase": state, "leader": record.leader,
                        "participants": record.participant_nodes()}
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {args.timeout:.0f} s waiting for {args.until}")
        time.sleep(0.1)


def _inspect(args: argparse.Namespace) -> dict[str, Any]:
    """The chain's account of the run: every epoch, every member's enrolled base URI, the
    RPC URL this observer used."""
    from brownie import web3

    from swarmtoken.chain.epochview import PHASES, read_epoch

    _connect(args.network)
    handles = _bind(Path(args.work))
    swarm, start = handles.swarm, int(handles.record["block"])
    setup = [json.loads((Path(args.work) / f"node-{i}" / "keystore.json").read_text())["address"]
             for i in range(args.nodes)]
    from eth_utils import to_checksum_address

    addresses = [to_checksum_address(a) for a in setup]
    epochs = {}
    for epoch in range(1, int(swarm.currentEpoch()) + 1):
        record = read_epoch(swarm, epoch, start)
        epochs[epoch] = {"phase": PHASES[int(swarm.epochState(epoch)["phase"])], "leader": record.leader,
                         "participants": record.participant_nodes(), "committers": [c.node for c in record.commits],
                         "settled": record.settled_at is not None, "abandoned": record.abandoned}
    return {"finished": bool(swarm.finished()), "current": int(swarm.currentEpoch()), "epochs": epochs,
            "base_uris": {a: swarm.baseUriOf(a) for a in addresses},
            "balances": {a: int(handles.token.balanceOf(a)) for a in addresses},
            "rpc_url": str(getattr(web3.provider, "endpoint_uri", ""))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.multihost", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole scenario (root and `ip netns` needed) and print a summary")
    run.add_argument("--work", required=True, help="run folder (node folders, logs, the private brownie home)")
    run.add_argument("--nodes", type=int, default=4)
    run.add_argument("--epochs", type=int, default=4)
    run.add_argument("--kill-in", type=int, default=2, help="epoch in which a node's namespace is torn down")
    for name in ("_admin", "_wait", "_inspect"):  # run by `run` inside the chain's namespace
        sub = commands.add_parser(name)
        sub.add_argument("--work", required=True)
        sub.add_argument("--network", required=True)
        sub.add_argument("--nodes", type=int, default=4)
        sub.add_argument("--epochs", type=int, default=4)
        sub.add_argument("--seed", type=int, default=3)
        sub.add_argument("--x", type=int, default=0)
        sub.add_argument("--until", choices=("report", "finished"), default="finished")
        sub.add_argument("--epoch", type=int, default=1)
        sub.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    if args.command == "run":
        reason = unavailable()
        if reason:
            print(f"cannot run: {reason}", file=sys.stderr)
            return 2
        harness = MultiHost(Path(args.work), nodes=args.nodes, epochs=args.epochs, kill_in=args.kill_in)
        try:
            result = harness.run()
        finally:
            left = harness.cleanup()
        summary = {k: result[k] for k in ("topology", "victim", "finished", "chain", "seconds")}
        summary["audit_exit"] = result["audit"]["code"]
        summary["left_over"] = left
        print(json.dumps(summary, indent=2))
        return 0 if result["audit"]["code"] == 0 and not left else 1
    import logging

    logging.disable(logging.CRITICAL)
    handler = {"_admin": _admin, "_wait": _wait, "_inspect": _inspect}[args.command]
    print(json.dumps(handler(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
