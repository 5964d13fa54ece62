"""``evaluering ingest DATA_DIR``: validate raw registers into canonical tables."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from evaluering.cli._common import echo, info


def _print_table(result) -> None:
    regs = result.manifest["registers"]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"ingest → {result.out_dir}")
        for col in ("register", "read", "accepted", "quarantined", "reasons"):
            table.add_column(col, justify="left" if col in ("register", "reasons") else "right")
        for reg, m in regs.items():
            table.add_row(reg, str(m["rows_read"]), str(m["rows_accepted"]),
                          str(m["rows_quarantined"]),
                          ", ".join(f"{k}={v}" for k, v in m["reasons"].items()) or "-")
        Console().print(table)
        return
    echo(f"output\t{result.out_dir}")
    echo("register\tread\taccepted\tquarantined\treasons")
    for reg, m in regs.items():
        reasons = ",".join(f"{k}={v}" for k, v in m["reasons"].items()) or "-"
        echo(f"{reg}\t{m['rows_read']}\t{m['rows_accepted']}\t{m['rows_quarantined']}\t{reasons}")


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_cmd(
        data_dir: Path = typer.Argument(..., help="Data-set folder with forloeb, kontakter, "
                                        "ugestatus (.parquet/.csv/.csv.gz) and the TOML files."),
        out: Optional[Path] = typer.Option(None, "--out", help="Output folder "
                                           "(default data/processed/<name of DATA_DIR>)."),
        koder: Optional[Path] = typer.Option(None, "--koder", help="Code mapping to use "
                                             "instead of DATA_DIR/ydelseskoder.toml."),
        memory_limit: Optional[str] = typer.Option(None, "--memory-limit",
                                                   help="DuckDB memory limit, e.g. 4GB."),
    ) -> None:
        """Validate raw registers into canonical Parquet tables; bad rows go to quarantine."""
        from evaluering.ingest import ingest

        result = ingest(data_dir, out_dir=out, koder=koder, memory_limit=memory_limit,
                        progress=info)
        _print_table(result)
