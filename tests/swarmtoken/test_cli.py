"""CLI entry points that need no chain."""

from click.testing import CliRunner

from swarmtoken import __version__
from swarmtoken.cli import main
from swarmtoken.doctor import check_compiler, pinned_solc_version, run_checks


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
