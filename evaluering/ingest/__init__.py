"""Validated ingest of the raw registers with quarantine (data contract v1).

``ingest(data_dir)`` reads ``forloeb``, ``kontakter`` and ``ugestatus`` (CSV in any of the
contract's dialects, gzip'ed CSV or Parquet), validates every row in DuckDB, and writes the
canonical typed Parquet tables of :mod:`evaluering.contract`, the quarantined rows with all
their reasons, and a manifest with checksums and the reconciliation
(rows read = accepted + quarantined). See ``docs/data-format.md``.
"""

from evaluering.ingest._config import load_koder
from evaluering.ingest._cpr import PSEUDONYM_ENV, is_cpr, pseudonymise
from evaluering.ingest.core import IngestResult, default_out_dir, ingest

__all__ = ["ingest", "IngestResult", "default_out_dir", "load_koder", "is_cpr",
           "pseudonymise", "PSEUDONYM_ENV"]
