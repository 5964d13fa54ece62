"""SQL execution engines: DuckDB (default, out-of-core) and Apache Spark (optional).

The outcome and panel transformations are written once, as SQL text in the DuckDB dialect
(see :mod:`evaluering.outcomes.sql` and :mod:`evaluering.panels.sql`). An engine runs a list
of named steps; each step becomes a temporary view (``CREATE TEMP VIEW``/Spark temp view) and
the final tables are written as Parquet. :class:`SparkEngine` translates every statement with
sqlglot (``read="duckdb", write="spark"``) before handing it to ``spark.sql``, so the same
text runs on both.

Only this module knows about the two back ends; no estimator uses it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa

from evaluering._atomic import atomic_path, write_parquet
from evaluering.errors import InputError

ENGINES = ("duckdb", "spark")


def to_spark_sql(sql: str) -> str:
    """Translate one statement from the DuckDB dialect to Spark SQL with sqlglot."""
    import sqlglot

    out = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    if len(out) != 1:
        raise ValueError("expected exactly one SQL statement")
    return out[0]


class Engine(Protocol):
    name: str

    def register_parquet(self, name: str, path: str | os.PathLike) -> None: ...

    def register_frame(self, name: str, df: pd.DataFrame) -> None: ...

    def create_view(self, name: str, select_sql: str, materialize: bool = False) -> None: ...

    def fetch(self, select_sql: str) -> pd.DataFrame: ...

    def write_parquet(self, select_sql: str, target: str | os.PathLike) -> int: ...

    def close(self) -> None: ...


class DuckDBEngine:
    """DuckDB in-process engine with an optional memory limit and spill directory.

    ``memory_limit`` is DuckDB's setting (e.g. ``"8GB"``); ``temp_dir`` is where DuckDB
    spills when the limit is reached (default: a fresh folder under the system temp dir).
    """

    name = "duckdb"

    def __init__(self, memory_limit: str | None = None, temp_dir: str | os.PathLike | None = None,
                 threads: int | None = None):
        import duckdb

        self._tmp_owned = None
        if temp_dir is None:
            self._tmp_owned = tempfile.TemporaryDirectory(prefix="evaluering-duckdb-")
            temp_dir = self._tmp_owned.name
        self.con = duckdb.connect(database=":memory:")
        self.con.execute(f"SET temp_directory = '{_sql_str(str(temp_dir))}'")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{_sql_str(memory_limit)}'")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        # Deterministic output order is enforced by ORDER BY where it matters; keep
        # insertion order so that ORDER BY results are written as sorted.
        self.con.execute("SET preserve_insertion_order = true")

    def register_parquet(self, name: str, path: str | os.PathLike) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS "
                         f"SELECT * FROM read_parquet('{_sql_str(str(path))}')")

    def register_frame(self, name: str, df: pd.DataFrame | pa.Table) -> None:
        tbl = _as_arrow(df)
        self.con.register(f"__{name}_arrow", tbl)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM __{name}_arrow")
        self.con.unregister(f"__{name}_arrow")

    def create_view(self, name: str, select_sql: str, materialize: bool = False) -> None:
        kind = "TABLE" if materialize else "VIEW"
        self.con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {select_sql}")

    def fetch(self, select_sql: str) -> pd.DataFrame:
        return self.con.execute(select_sql).df()

    def write_parquet(self, select_sql: str, target: str | os.PathLike) -> int:
        with atomic_path(target) as tmp:
            self.con.execute(f"COPY ({select_sql}) TO '{_sql_str(str(tmp))}' "
                             "(FORMAT parquet, COMPRESSION zstd)")
        return int(self.con.execute(
            f"SELECT COUNT(*) FROM read_parquet('{_sql_str(str(target))}')").fetchone()[0])

    def close(self) -> None:
        self.con.close()
        if self._tmp_owned is not None:
            self._tmp_owned.cleanup()


class SparkEngine:
    """Apache Spark engine: the same SQL steps, translated to Spark SQL by sqlglot.

    Creates (or reuses) a SparkSession; ``memory_limit`` sets ``spark.driver.memory`` for a
    new local session. Final tables are collected to the driver and written as one Parquet
    file so that both engines produce the same files (suitable for aggregated outputs and
    test-size data; at national scale on a cluster write with Spark's own writer instead).
    """

    name = "spark"

    def __init__(self, memory_limit: str | None = None, temp_dir: str | os.PathLike | None = None,
                 spark=None):
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise InputError("the Spark engine needs pyspark: pip install 'evaluering[spark]'") from exc
        if spark is None:
            builder = (SparkSession.builder.master("local[2]").appName("evaluering")
                       .config("spark.sql.session.timeZone", "UTC")
                       .config("spark.sql.shuffle.partitions", "2")
                       .config("spark.default.parallelism", "2")
                       .config("spark.ui.enabled", "false")
                       .config("spark.ui.showConsoleProgress", "false")
                       .config("spark.sql.ansi.enabled", "false"))
            if memory_limit:
                builder = builder.config("spark.driver.memory", memory_limit.replace("GB", "g")
                                         .replace("GiB", "g").replace("MB", "m"))
            if temp_dir:
                builder = builder.config("spark.local.dir", str(temp_dir))
            spark = builder.getOrCreate()
        self.spark = spark
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self.spark.conf.set("spark.sql.ansi.enabled", "false")

    def register_parquet(self, name: str, path: str | os.PathLike) -> None:
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)

    def register_frame(self, name: str, df: pd.DataFrame | pa.Table) -> None:
        tbl = _as_arrow(df)
        with tempfile.TemporaryDirectory(prefix="evaluering-spark-") as d:
            p = Path(d) / f"{name}.parquet"
            write_parquet(p, tbl)
            # cache + count so the temp file may go away
            sdf = self.spark.read.parquet(str(p)).cache()
            sdf.count()
        sdf.createOrReplaceTempView(name)

    def create_view(self, name: str, select_sql: str, materialize: bool = False) -> None:
        sdf = self.spark.sql(to_spark_sql(select_sql))
        if materialize:
            sdf = sdf.cache()
        sdf.createOrReplaceTempView(name)

    def fetch(self, select_sql: str) -> pd.DataFrame:
        sdf = self.spark.sql(to_spark_sql(select_sql))
        return _arrow_from_spark(sdf).to_pandas()

    def write_parquet(self, select_sql: str, target: str | os.PathLike) -> int:
        sdf = self.spark.sql(to_spark_sql(select_sql))
        tbl = _arrow_from_spark(sdf)
        write_parquet(target, tbl)
        return tbl.num_rows

    def close(self) -> None:
        for name in [t.name for t in self.spark.catalog.listTables() if t.isTemporary]:
            self.spark.catalog.dropTempView(name)


def _as_arrow(df) -> pa.Table:
    if isinstance(df, pa.Table):
        return df
    return pa.Table.from_pandas(df, preserve_index=False)


def _arrow_from_spark(sdf) -> pa.Table:
    try:
        return sdf.toArrow()
    except AttributeError:  # pragma: no cover - pyspark < 4
        return pa.Table.from_pandas(sdf.toPandas(), preserve_index=False)


def make_engine(engine: str = "duckdb", memory_limit: str | None = None,
                temp_dir: str | os.PathLike | None = None, threads: int | None = None) -> Engine:
    if engine == "duckdb":
        return DuckDBEngine(memory_limit=memory_limit, temp_dir=temp_dir, threads=threads)
    if engine == "spark":
        return SparkEngine(memory_limit=memory_limit, temp_dir=temp_dir)
    raise InputError(f"unknown engine '{engine}'", expected=" or ".join(ENGINES))


def _sql_str(s: str) -> str:
    return s.replace("'", "''")
