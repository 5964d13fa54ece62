"""``evaluering demo``: the whole job end to end on a fresh simulation.

simulate (built-in registers for the 98 municipalities with planted trial effects) → ingest
(validation, quarantine, manifest) → outcomes and panels → the evaluation report (analysis of
every trial × outcome, Danish PDF, resultater.json, tables, figures, manifest). It ends by
printing the verdict table next to the planted truth and where every output is.
"""

from __future__ import annotations

import json
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
        notebook: bool = typer.Option(True, "--notebook/--no-notebook", help="Analyse one trial "
                                      "with notebooks/05_forsoegsanalyse.ipynb (source checkout)."),
    ) -> None:
        """Simulate registers, ingest them, build outcomes and panels, and write the report."""
        from evaluering.ingest import ingest
        from evaluering.outcomes import build_outcomes
        from evaluering.report import build_report_from_cli
        from evaluering.simulate import simulate

        t0 = time.perf_counter()
        raw = workdir / "data" / "raw" / name
        processed = workdir / "data" / "processed" / name
        info(f"1/4 simulate ({scale}, seed {seed}) → {raw}")
        simulate(raw, scale=scale, seed=seed)

        info(f"2/4 ingest → {processed}")
        res = ingest(raw, processed)
        for reg, m in sorted(res.manifest["registers"].items()):
            info(f"    {reg}: read {m['rows_read']:,}, accepted {m['rows_accepted']:,}, "
                 f"quarantined {m['rows_quarantined']:,}")

        info("3/4 outcomes and panels")
        build_outcomes(processed, forsoeg=raw / "forsoeg.toml")

        info("4/4 report (randomization inference over municipalities: a few minutes)")
        nbs = ()
        if notebook:
            nb = Path(__file__).resolve().parents[2] / "notebooks" / "05_forsoegsanalyse.ipynb"
            if nb.is_file():    # a source checkout: one trial analysed by the analyst notebook
                from evaluering.report.notebook import NotebookSpec

                nbs = (NotebookSpec(DEMO_NOTEBOOK_TRIAL, nb),)
                info(f"    {DEMO_NOTEBOOK_TRIAL} is analysed by {nb.name} (audit copy beside the PDF)")
            else:
                info("    (notebooks/ not found: an installed package; every trial built in)")
        rep = build_report_from_cli(processed, raw / "forsoeg.toml", out=workdir / "reports" / name,
                                    navn=name, notebooks=nbs)
        for line in _verdict_lines(Path(rep.resultater), raw / "sandhed.json"):
            echo(line)
        echo(f"demo finished in {time.perf_counter() - t0:.0f} s. Outputs:")
        for label, path in (("raw registers (+ sandhed.json)", raw), ("processed tables", processed),
                            ("ingest manifest", processed / "manifest.json"),
                            ("report", rep.pdf), ("results", rep.resultater),
                            ("report manifest", rep.manifest),
                            *((("audit notebook", p) for p in rep.files if p.suffix == ".ipynb"))):
            echo(f"  {label}: {path}")


DEMO_NOTEBOOK_TRIAL = "samtaler-forsikrede"


def _verdict_lines(resultater: Path, sandhed: Path) -> list[str]:
    """The report's verdicts beside the planted truth (the simulation's sandhed.json)."""
    records = json.loads(resultater.read_text(encoding="utf-8"))
    truth = json.loads(sandhed.read_text(encoding="utf-8")).get("forsoeg", {})
    lines = [f"  {'trial':28s} {'outcome':26s} {'estimate':>10s} {'planted':>9s}  verdict"]
    for r in records:
        t = truth.get(r["forsoeg"], {}).get("effekt_fuld_opfoelgning", {}).get(r["udfald"])
        est = "suppressed" if r["estimate"] is None else f"{r['estimate']:.3g}"
        lines.append(f"  {r['forsoeg']:28s} {r['udfald']:26s} {est:>10s} "
                     f"{'' if t is None else f'{t:.3g}':>9s}  {r['verdict']}")
    lines.append("  (planted shares are in percentage points; estimates of shares are fractions)")
    return lines
