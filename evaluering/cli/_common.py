"""Shared CLI plumbing: logging/progress that adapts to a terminal, exit codes."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

import typer
from rich.console import Console

from evaluering.errors import EstimationError, EvalueringError, InputError

try:  # typer >= 0.20 vendors click as typer._click
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _click_exc

log = logging.getLogger("evaluering")

_state = {"quiet": False}
err_console = Console(stderr=True)


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr, force=True)


def info(msg: str) -> None:
    """A progress line on stderr (suppressed by --quiet). Never put person data here."""
    if not _state["quiet"]:
        if sys.stderr.isatty():
            err_console.print(msg)
        else:
            log.info(msg)


def echo(msg: str) -> None:
    """Result output on stdout (kept with --quiet: it is the command's answer)."""
    typer.echo(msg)


def ingest_counts(result) -> list[tuple[str, int, int, int, dict]]:
    """Per register of an ingest result (``IngestResult`` or anything with its ``manifest``):
    ``(register, rows read, rows accepted, rows quarantined, {reason: count})``."""
    return [(reg, int(m["rows_read"]), int(m["rows_accepted"]), int(m["rows_quarantined"]),
             dict(m["reasons"])) for reg, m in result.manifest["registers"].items()]


def echo_ingest(result, *, compact: bool = False) -> None:
    """Print an ingest's reconciliation (read = accepted + quarantined, per register) on stdout.

    ``compact=False`` (``evaluering ingest``): a rich table on a terminal, otherwise the
    output folder and a tab-separated table with a header line. ``compact=True``
    (``evaluering build``, ahead of its outcomes table): one
    ``ingest<TAB>register<TAB>read=…<TAB>accepted=…<TAB>quarantined=…`` line per register.
    """
    rows = ingest_counts(result)
    if compact:
        for reg, read, acc, quar, _ in rows:
            echo(f"ingest\t{reg}\tread={read}\taccepted={acc}\tquarantined={quar}")
        return
    if sys.stdout.isatty():
        from rich.table import Table

        table = Table(title=f"ingest → {result.out_dir}")
        for col in ("register", "read", "accepted", "quarantined", "reasons"):
            table.add_column(col, justify="left" if col in ("register", "reasons") else "right")
        for reg, read, acc, quar, reasons in rows:
            table.add_row(reg, str(read), str(acc), str(quar),
                          ", ".join(f"{k}={v}" for k, v in reasons.items()) or "-")
        Console().print(table)
        return
    echo(f"output\t{result.out_dir}")
    echo("register\tread\taccepted\tquarantined\treasons")
    for reg, read, acc, quar, reasons in rows:
        text = ",".join(f"{k}={v}" for k, v in reasons.items()) or "-"
        echo(f"{reg}\t{read}\t{acc}\t{quar}\t{text}")


@contextlib.contextmanager
def progress(description: str, total: int | None = None) -> Iterator:
    """A rich progress bar on a terminal; plain log lines otherwise.

    Yields ``advance(n=1)``.
    """
    if _state["quiet"] or not sys.stderr.isatty():
        info(f"{description} ...")
        yield lambda n=1: None
        info(f"{description}: done")
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, transient=False) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)


def run_guarded(app: typer.Typer, argv: list[str]) -> int:
    """Run a typer app; InputError → exit 2 with one line, other errors → exit 1."""
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except _click_exc.ClickException as exc:
        exc.show()
        return 2
    except (InputError, EstimationError) as exc:
        # bad input, or data that do not allow the requested estimator: the user's to fix
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except EvalueringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if not _state.get("quiet") and "--debug" in argv:
            raise
        return 1
    return 0


QuietOption = typer.Option(False, "--quiet", "-q", help="Only warnings and the result.")

# Parameters of the commands that read a raw data set (`ingest`, `build`)
RawDirArgument = typer.Argument(..., help="Raw data-set folder: forloeb, kontakter, ugestatus "
                                "(.parquet/.csv/.csv.gz), ydelseskoder.toml, forsoeg.toml.")
ProcessedOutOption = typer.Option(None, "--out", help="Folder of canonical tables to write "
                                  "(default data/processed/<name of DATA_DIR>).")
MemoryLimitOption = typer.Option(None, "--memory-limit", help="Engine memory limit, e.g. 8GB "
                                 "(DuckDB spills to disk beyond it).")
