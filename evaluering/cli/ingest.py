"""``evaluering ingest DATA_DIR``: validate raw registers into canonical tables."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evaluering.cli._common import (MemoryLimitOption, ProcessedOutOption, RawDirArgument,
                                     echo_ingest, info)


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_cmd(
        data_dir: Path = RawDirArgument,
        out: Optional[Path] = ProcessedOutOption,
        koder: Optional[Path] = typer.Option(None, "--koder", help="Code mapping to use "
                                             "instead of DATA_DIR/ydelseskoder.toml."),
        memory_limit: Optional[str] = MemoryLimitOption,
    ) -> None:
        """Validate raw registers into canonical Parquet tables; bad rows go to quarantine."""
        from evaluering.ingest import ingest

        result = ingest(data_dir, out_dir=out, koder=koder, memory_limit=memory_limit,
                        progress=info)
        echo_ingest(result)
