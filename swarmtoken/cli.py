"""The `swarm` command line. Commands import heavy libraries (brownie, torch) inside
their bodies so `swarm --help`, `--version` and `doctor` stay fast."""

from __future__ import annotations

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="swarm")
def main() -> None:
    """Swarm: decentralized swarm learning with on-chain contribution rewards."""


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
