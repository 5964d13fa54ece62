"""``evaluering simulate``: write a simulated raw data set in the data contract's format."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from evaluering.cli._common import echo, info, progress


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_cmd(
        out: Path = typer.Option(..., "--out", help="Data-set folder to write, e.g. data/raw/sim."),
        scale: str = typer.Option("small", "--scale",
                                  help="small (4 000 persons), medium (100 000) or "
                                       "national (1 000 000)."),
        seed: int = typer.Option(0, "--seed", help="Random seed; same seed = identical files."),
        no_effect: bool = typer.Option(False, "--no-effect",
                                       help="Plant no effect in any trial."),
        effects: Path = typer.Option(None, "--effects", exists=False,
                                     help="TOML/JSON file: [<trial id>] tables of effects "
                                          "(hazard_job, samtaler, andel_fysiske, "
                                          "laegeattester, rehab, minutter)."),
        fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
        corrupt: bool = typer.Option(False, "--corrupt",
                                     help="Also write a deliberately corrupted CSV copy to "
                                          "<out>-korrupt (with a ground-truth file)."),
    ) -> None:
        """Simulate registers (forloeb, kontakter, ugestatus) with planted trial effects."""
        from evaluering.errors import InputError
        from evaluering.simulate import SCALES, simulate

        if no_effect and effects is not None:
            raise InputError("--no-effect and --effects exclude each other")
        if scale not in SCALES:
            raise InputError(f"unknown scale '{scale}'", expected="small, medium or national")
        eff = {} if no_effect else (effects if effects is not None else None)
        t0 = time.perf_counter()
        info(f"simulate {scale} (seed {seed}) → {out}")
        with progress("simulating", total=None) as advance:
            path = simulate(out, scale=scale, seed=seed, effects=eff, corrupt=corrupt, fmt=fmt,
                            progress=lambda i, n: advance(1))
        echo(f"simulated data set written to {path} in {time.perf_counter() - t0:.1f} s")
        if corrupt:
            echo(f"corrupted copy written to {path.with_name(path.name + '-korrupt')}")
