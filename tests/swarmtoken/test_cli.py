"""CLI entry points that need no chain."""

import pytest
from click.testing import CliRunner

from swarmtoken import __version__
from swarmtoken.cli.commands import main
from swarmtoken.cli.doctor import check_compiler, pinned_solc_version, run_checks


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_doctor_passes_on_an_installed_checkout():
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    assert all(check.ok for check in run_checks())


def test_doctor_names_the_fix_for_a_missing_adapter(tmp_path, monkeypatch):
    monkeypatch.setenv("SOLCX_BINARY_PATH", str(tmp_path))
    adapter = [c for c in check_compiler() if c.name == "compiler adapter"][0]
    assert not adapter.ok and adapter.fix == "make install"


def test_compiler_pins_agree():
    import json
    from pathlib import Path

    npm = json.loads(Path("package.json").read_text())["devDependencies"]["solc"]
    assert pinned_solc_version() == npm


def test_commands_without_a_chain_say_how_to_start_one():
    from swarmtoken.cli.demo import free_port

    result = CliRunner().invoke(main, ["status", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "no chain is running" in result.output and "swarm chain up" in result.output
    assert "Traceback" not in result.output


def test_unknown_network_is_one_clear_line():
    result = CliRunner().invoke(main, ["ledger", "--network", "no-such-net"])
    assert result.exit_code == 2 and "unknown network 'no-such-net'" in result.output


def test_train_with_a_missing_config_names_the_file(tmp_path):
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "node.toml")])
    assert result.exit_code == 2 and "node.toml: no such file" in result.output


def test_authorize_refuses_a_malformed_address():
    result = CliRunner().invoke(main, ["authorize", "0x1234", "--samples", "100"])
    assert result.exit_code == 2 and "not an Ethereum address" in result.output


def test_demo_refuses_too_many_rogues(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--nodes", "4", "--rogue", "2", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and "fewer than half of --nodes" in result.output
    cheats = ["--protocol-attack", "copycat", "--protocol-attack", "inflate_samples"]
    result = CliRunner().invoke(main, ["demo", "--nodes", "5", "--rogue", "1", *cheats, "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and "fewer than half of --nodes" in result.output


def test_a_demo_swarm_never_needs_more_active_members_than_its_honest_nodes():
    """Three nodes, one rogue: once the rogue is suspended two remain, and a minimum of three
    would stall the swarm for good."""
    from swarmtoken.cli.demo import DemoOptions

    assert DemoOptions(nodes=3, rogue=1).min_peers == 2
    assert DemoOptions(nodes=5, rogue=1, protocol_attacks=("copycat",)).min_peers == 3
    assert DemoOptions(nodes=5, rogue=0).min_peers == 3


@pytest.mark.parametrize("option, known", [("--attack", "alie"), ("--merge", "fltrust_median"),
                                           ("--scorer", "shapley_quadratic"), ("--dataset", "wine"),
                                           ("--protocol-attack", "copycat")])
def test_demo_refuses_an_unknown_component_and_names_the_known_ones(tmp_path, option, known):
    result = CliRunner().invoke(main, ["demo", option, "bogus", "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and f"{option}: unknown 'bogus'; known: " in result.output
    assert known in result.output and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()


def test_demo_never_wipes_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not a demo run folder" in result.output
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("args", [["--help"], ["ledger", "--port", "1"], ["authorize", "0x1", "--samples", "5"],
                                  ["claim", "--keystore", "missing.json", "--port", "1"]])
def test_commands_that_train_nothing_do_not_load_torch(args, tmp_path):
    """Loading torch costs about 2 s of CPU; the chain and ledger commands, and their error
    paths, must not pay it (every command's error handling once did, through the node's
    error type)."""
    import subprocess
    import sys

    probe = ("import sys; from swarmtoken.cli.commands import main\n"
             f"try: main({args!r})\nexcept SystemExit: pass\n"
             "sys.__stderr__.write('torch loaded' if 'torch' in sys.modules else 'torch not loaded')")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stderr.endswith("torch not loaded"), done.stdout + done.stderr
