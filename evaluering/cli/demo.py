"""``evaluering demo``: everything end to end on a fresh small simulation."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from evaluering.cli._common import echo, info


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        workdir: Path = typer.Option(Path("."), "--dir", help="Project folder holding data/ and reports/."),
        scale: str = typer.Option("small", help="Simulation scale: small, medium or national."),
        seed: int = typer.Option(2017, help="Random seed of the simulation."),
        name: str = typer.Option("demo", help="Name of the simulated data set and report."),
    ) -> None:
        """Simulate registers, ingest them, build outcomes and panels, and write the report."""
        from evaluering.simulate import simulate

        t0 = time.perf_counter()
        raw = workdir / "data" / "raw" / name
        processed = workdir / "data" / "processed" / name
        info(f"1/5 simulate ({scale}, seed {seed}) → {raw}")
        simulate(raw, scale=scale, seed=seed)

        from evaluering.ingest import ingest

        info(f"2/5 ingest → {processed}")
        res = ingest(raw, processed)
        outputs = {"raw registers": raw, "processed tables": processed,
                   "manifest": processed / "manifest.json"}
        for reg, m in sorted(res.manifest["registers"].items()):
            info(f"    {reg}: read {m['rows_read']:,}, accepted {m['rows_accepted']:,}, "
                 f"quarantined {m['rows_quarantined']:,}")

        from evaluering.outcomes import build_outcomes

        info("3/5 outcomes and panels")
        build_outcomes(processed, forsoeg=raw / "forsoeg.toml")
        outputs["outcomes and panels"] = processed

        info("4/5 headline estimates (Callaway–Sant'Anna per trial, quarterly municipality panel)")
        for line in _headline_estimates(processed, raw / "forsoeg.toml"):
            echo(line)

        try:
            from evaluering.report import build_report_from_cli
        except ImportError:
            build_report_from_cli = None
        if build_report_from_cli is not None:
            info("5/5 report")
            rep = build_report_from_cli(raw, raw / "forsoeg.toml", out=workdir / "reports" / name)
            outputs["report"] = rep
        echo(f"demo finished in {time.perf_counter() - t0:.1f} s. Outputs:")
        for label, path in outputs.items():
            echo(f"  {label}: {path}")


def _headline_estimates(processed: Path, forsoeg_path: Path) -> list[str]:
    """One line per trial × outcome: CS simple ATT with its 95 % CI (analytic, clustered)."""
    import pandas as pd

    from evaluering.errors import EstimationError
    from evaluering.estimators.cs import callaway_santanna
    from evaluering.panels.trial import forsoeg_panel
    from evaluering.reference.catalogue import load_forsoeg

    panel = pd.read_parquet(processed / "panel_kvartal.parquet")
    lines = []
    for f in load_forsoeg(forsoeg_path):
        p = forsoeg_panel(panel, f, "kvartal", drop_excluded=True)
        for outcome in ("samtaler_pr_forloeb", "andel_fysiske_samtaler", "job_26_uger"):
            d = p[["kommune_kode", "t", "kohorte", outcome]].dropna()
            try:
                r = callaway_santanna(d, outcome, "kommune_kode", "t", "kohorte",
                                      control="notyet", cluster="kommune_kode")
            except EstimationError as exc:
                lines.append(f"  {f.id:32s} {outcome:24s} not estimable: {exc}")
                continue
            lines.append(f"  {f.id:32s} {outcome:24s} ATT {r.estimate:+.3f} "
                         f"[{r.ci[0]:+.3f}, {r.ci[1]:+.3f}]")
    return lines
