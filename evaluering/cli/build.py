"""``evaluering build DATA_DIR`` (ingest + outcomes) and ``evaluering outcomes PROCESSED_DIR``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from evaluering.cli._common import (MemoryLimitOption, ProcessedOutOption, RawDirArgument, echo,
                                     echo_ingest, info)


def _date(value: Optional[str], option: str) -> Optional[dt.date]:
    if value is None:
        return None
    from evaluering.errors import InputError

    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{option}: not a date: '{value}'", expected="YYYY-MM-DD") from exc


def _run_outcomes(processed: Path, forsoeg: Optional[Path], n_weeks: int, engine: str,
                  memory_limit: Optional[str], out: Optional[Path], window_end: Optional[str],
                  temp_dir: Optional[Path]) -> None:
    from evaluering.errors import InputError
    from evaluering.outcomes import build_outcomes

    if forsoeg is None and (processed / "forsoeg.toml").is_file():
        forsoeg = processed / "forsoeg.toml"
    if forsoeg is not None and not Path(forsoeg).is_file():
        raise InputError("trial catalogue not found", file=str(forsoeg))
    info(f"outcomes ({engine}, N={n_weeks}) from {processed}"
         + (f" with catalogue {forsoeg}" if forsoeg else " without a trial catalogue"))
    r = build_outcomes(processed, forsoeg=forsoeg, n_weeks=n_weeks, engine=engine,
                       memory_limit=memory_limit, out_dir=out,
                       window_end=_date(window_end, "--vindue-slut"), temp_dir=temp_dir)
    m = r.manifest
    echo(f"output\t{r.out_dir}")
    echo(f"tid_til_job_kilde\t{m['tid_til_job_kilde']}")
    echo("table\trows")
    for name, n in m["raekker"].items():
        echo(f"{name}\t{n}")
    k = m["kontakter"]
    echo(f"kontakter\t{k['i_alt']} ({k['i_forloeb']} in spells, {k['uden_forloeb']} outside any spell)")
    echo(f"seconds\t{m['sekunder']}")


_ENGINE = typer.Option("duckdb", "--engine", help="duckdb (default) or spark (needs pyspark).")
_N = typer.Option(4, "--n-uger", "-n", min=1,
                  help="Consecutive self-supporting weeks that define a job (default 4).")
_WIN = typer.Option(None, "--vindue-slut",
                    help="End of the evaluation window (YYYY-MM-DD); default: the latest "
                         "'slut' in the trial catalogue.")
_TMP = typer.Option(None, "--temp-dir", help="Spill folder for the engine.")
_CAT = typer.Option(None, "--forsoeg", help="Trial catalogue (forsoeg.toml); default: "
                                            "forsoeg.toml in the data folder, if any.")


def register(app: typer.Typer) -> None:
    @app.command("outcomes")
    def outcomes_cmd(
        processed_dir: Path = typer.Argument(..., help="Folder of canonical tables written by "
                                             "`evaluering ingest`."),
        forsoeg: Optional[Path] = _CAT,
        n_weeks: int = _N,
        engine: str = _ENGINE,
        memory_limit: Optional[str] = MemoryLimitOption,
        out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: "
                                           "PROCESSED_DIR)."),
        window_end: Optional[str] = _WIN,
        temp_dir: Optional[Path] = _TMP,
    ) -> None:
        """Compute outcomes per spell, exposure, panels and the survival table."""
        from evaluering.errors import InputError

        if not processed_dir.is_dir() or not (processed_dir / "forloeb.parquet").is_file():
            raise InputError("not a folder of canonical tables (forloeb.parquet missing); "
                             "run `evaluering ingest` first", file=str(processed_dir))
        _run_outcomes(processed_dir, forsoeg, n_weeks, engine, memory_limit, out, window_end,
                      temp_dir)

    @app.command("build")
    def build_cmd(
        data_dir: Path = RawDirArgument,
        out: Optional[Path] = ProcessedOutOption,
        forsoeg: Optional[Path] = _CAT,
        n_weeks: int = _N,
        engine: str = _ENGINE,
        memory_limit: Optional[str] = MemoryLimitOption,
        window_end: Optional[str] = _WIN,
        temp_dir: Optional[Path] = _TMP,
    ) -> None:
        """Ingest the raw registers, then compute outcomes and panels (ingest + outcomes)."""
        from evaluering.ingest import ingest

        res = ingest(data_dir, out_dir=out, memory_limit=memory_limit, progress=info)
        echo_ingest(res, compact=True)
        _run_outcomes(Path(res.out_dir), forsoeg, n_weeks, engine, memory_limit, None,
                      window_end, temp_dir)
