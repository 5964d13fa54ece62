"""``evaluering rapport``: build the Danish evaluation report (PDF, tables, figures, JSON).

Either ``evaluering rapport --config evaluering.toml`` or
``evaluering rapport DATA_DIR --forsoeg FORSOEG.toml [--koder KODER.toml] [--out DIR]``;
``--notebook TRIAL=PATH`` (repeatable) analyses a trial with a notebook (docs/report.md).
Unchanged inputs and config: nothing is rebuilt (``--force`` rebuilds). A second build of the
same output while one runs exits at once with a clear message. Exit codes: 0 ok, 2 bad input,
1 any other failure (one line on stderr; the previous report is left intact).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evaluering.cli._common import echo, info


def register(app: typer.Typer) -> None:
    @app.command("rapport")
    def rapport(
        data_dir: Optional[Path] = typer.Argument(None, help="Raw data-set folder (or a processed "
                                                  "folder from `evaluering build`)."),
        config: Optional[Path] = typer.Option(None, "--config", help="evaluering.toml ([rapport], "
                                              "[analyse]); see examples/evaluering.toml."),
        forsoeg: Optional[Path] = typer.Option(None, "--forsoeg", help="Trial catalogue "
                                               "(default: DATA_DIR/forsoeg.toml)."),
        koder: Optional[Path] = typer.Option(None, "--koder", help="ydelseskoder.toml if not in "
                                             "DATA_DIR."),
        out: Optional[Path] = typer.Option(None, "--out", help="Report folder (default "
                                           "reports/<name of DATA_DIR>)."),
        inferens: Optional[str] = typer.Option(None, "--inferens", help="bootstrap or ri "
                                               "(overrides the config)."),
        notebook: Optional[list[str]] = typer.Option(None, "--notebook", help="TRIAL=PATH: analyse "
                                                     "this trial with a notebook (repeatable; kept "
                                                     "beside the PDF as analyse-TRIAL.ipynb)."),
        force: bool = typer.Option(False, "--force", help="Rebuild even if nothing changed."),
    ) -> None:
        """Build the evaluation report: rapport.pdf, resultater.json, tables, figures, manifest."""
        from dataclasses import replace

        from evaluering.errors import InputError
        from evaluering.report import AnalysisOptions, ReportConfig, build_report, load_config
        from evaluering.report.build import parse_notebook_option

        if config is not None:
            cfg = load_config(config)
            if out is not None:
                cfg = replace(cfg, out=out)
        else:
            if data_dir is None:
                raise InputError("give DATA_DIR (with --forsoeg) or --config")
            if not data_dir.is_dir():
                raise InputError("not a folder", file=str(data_dir))
            cat = forsoeg or data_dir / "forsoeg.toml"
            if not cat.is_file():
                raise InputError("trial catalogue not found (give --forsoeg)", file=str(cat))
            cfg = ReportConfig(data=data_dir, forsoeg=cat, koder=koder,
                               out=out or Path("reports") / data_dir.name, navn=data_dir.name)
        nbs = parse_notebook_option(notebook)
        if nbs:   # replaces the config's notebook of the same trial
            given = {x.forsoeg for x in nbs}
            cfg = replace(cfg, notebooks=tuple(x for x in cfg.notebooks if x.forsoeg not in given) + nbs)
        if inferens is not None:
            from dataclasses import asdict

            cfg = replace(cfg, analyse=AnalysisOptions(**{**asdict(cfg.analyse), "inferens": inferens}))
        res = build_report(cfg, force=force, progress=info)
        if res.rebuilt:
            echo(f"report\t{res.out}")
            echo(f"pdf\t{res.pdf}")
            echo(f"seconds\t{res.timings.get('i_alt', 0):.1f}")
        else:
            echo(f"unchanged\t{res.out}\t(inputs and config match the published manifest)")
