"""The ``evaluering`` command line (typer + rich).

Each area of the toolkit registers its own commands from a module in this package that
exposes ``register(app)``. To add a command, write ``evaluering/cli/<area>.py`` and add its
name to ``_COMMAND_MODULES``. Exit codes: 0 ok, 2 bad input (``InputError``), 1 internal error.
"""

from __future__ import annotations

import importlib
import sys

import typer

from evaluering.cli._common import run_guarded, set_quiet

app = typer.Typer(
    name="evaluering",
    help="Evaluate Danish free-municipality trials on the employment area "
         "(ingest registers, outcomes, difference-in-differences, report).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(quiet: bool = typer.Option(False, "--quiet", "-q",
                                     help="Only warnings, errors and the result.")) -> None:
    """Evaluate Danish free-municipality trials on the employment area."""
    set_quiet(quiet)


@app.command("version")
def version() -> None:
    """Print the toolkit's version."""
    from evaluering import __version__

    typer.echo(__version__)


# Modules under evaluering/cli/ that expose register(app); add a line per area.
_COMMAND_MODULES: tuple[str, ...] = (
    "build",
    "demo",
    "estimate",
    "ingest",
    "rapport",
    "simulate",
)

for _name in _COMMAND_MODULES:
    importlib.import_module(f"evaluering.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn errors into exit codes."""
    return run_guarded(app, argv if argv is not None else sys.argv[1:])
