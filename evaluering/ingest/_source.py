"""Reading one raw register file into DuckDB: discovery, checksums, dialect detection.

Every register file is exposed as a DuckDB view ``rows_<register>`` with one row per
non-blank physical line (CSV) or per row (Parquet)::

    _row       BIGINT     1-based ordinal of the data row (non-blank lines after the header)
    _line      BIGINT     1-based physical line in the file (header = line 1);
                          Parquet: 1-based row number + 1
    _f         VARCHAR[]  the fields as text (CSV: split on the separator, quotes removed)
    _shape_ok  BOOLEAN    the line splits into exactly as many fields as the header
    kind, line            the split path (see :func:`split_exprs`) and the raw line (CSV)

and a table ``dupl_<register>`` with the ``_line`` of every exact duplicate (a row whose text
equals that of an earlier row). The view has no ORDER BY and is read by one materialising
query per register; every query that writes output orders explicitly.

CSV lines are read by DuckDB as whole lines (one VARCHAR column, no quoting, a separator
that does not occur in the file), so line numbers are exact physical line numbers (lines end
with ``\\n`` or ``\\r\\n``). Splitting into fields happens in SQL: ``string_split`` for
lines without quotes, a regular expression for RFC 4180 quoted fields otherwise. A quoted
field holding a line break is *not* supported (registers do not contain any): such a record
becomes two malformed lines, both quarantined with ``ugyldig_linje``, and nothing is lost.

Encoding: the whole (decompressed) file is decoded as strict UTF-8 (a BOM gives
``utf-8-sig``); if that fails, as strict Windows-1252 and transcoded in streaming chunks to a
private temporary UTF-8 file that DuckDB reads; if that fails too (bytes undefined in
Windows-1252) or the file holds NUL bytes (UTF-16?), the file is rejected (``InputError``).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from evaluering.errors import InputError
from evaluering.ingest._cpr import mask_text

CHUNK = 1 << 22  # 4 MiB
EXTENSIONS = (".parquet", ".csv", ".csv.gz")
# candidates for the "no-op" delimiter DuckDB uses to read whole lines
_LINE_DELIMS = (b"\x1f", b"\x1e", b"\x1d", b"\x1c", b"\x1b", b"\x1a", b"\x19", b"\x18",
                b"\x17", b"\x16", b"\x15", b"\x14", b"\x13", b"\x12", b"\x11", b"\x10")


@dataclass
class SourceFile:
    register: str
    path: Path
    format: str                     # "csv", "csv.gz" or "parquet"
    sha256: str
    header: list[str]               # column names as given (stripped)
    encoding: str | None = None     # "utf-8", "utf-8-sig" or "cp1252"
    separator: str | None = None
    read_path: Path | None = None   # what DuckDB reads (a transcoded copy for cp1252)
    line_delim: str | None = None
    parquet_types: dict[str, str] = field(default_factory=dict)


def find_register(data_dir: Path, register: str) -> Path | None:
    """The one file of ``register`` in ``data_dir`` (None if absent; two is an error)."""
    present = [data_dir / f"{register}{ext}" for ext in EXTENSIONS
               if (data_dir / f"{register}{ext}").is_file()]
    if len(present) > 1:
        raise InputError(f"register '{register}' is given more than once: "
                         + ", ".join(p.name for p in present), file=str(data_dir),
                         expected="exactly one of " + ", ".join(register + e for e in EXTENSIONS))
    return present[0] if present else None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _open_bytes(path: Path, gz: bool):
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _scan_encoding(path: Path, gz: bool) -> tuple[str, set[bytes]]:
    """Strict UTF-8 decode of the whole file; returns (encoding, control bytes present)."""
    present: set[bytes] = set()
    dec = codecs.getincrementaldecoder("utf-8")(errors="strict")
    first = True
    encoding = "utf-8"
    utf8_ok = True
    try:
        with _open_bytes(path, gz) as fh:
            while chunk := fh.read(CHUNK):
                if first:
                    if chunk.startswith(codecs.BOM_UTF8):
                        encoding = "utf-8-sig"
                    first = False
                if b"\x00" in chunk:
                    raise InputError("unknown encoding: the file contains NUL bytes",
                                     file=str(path), expected="UTF-8 or Windows-1252 text "
                                     "(UTF-16 is not accepted)")
                for d in _LINE_DELIMS:
                    if d not in present and d in chunk:
                        present.add(d)
                if utf8_ok and not chunk.isascii():
                    try:
                        dec.decode(chunk, final=False)
                    except UnicodeDecodeError:
                        utf8_ok = False
            if utf8_ok:
                try:
                    dec.decode(b"", final=True)
                except UnicodeDecodeError:
                    utf8_ok = False
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"cannot be read: {exc}", file=str(path)) from None
    if utf8_ok:
        return encoding, present
    return "cp1252", present


def _transcode_cp1252(path: Path, gz: bool, target: Path) -> None:
    dec = codecs.getincrementaldecoder("cp1252")(errors="strict")
    offset = 0
    try:
        with _open_bytes(path, gz) as src, open(target, "wb") as dst:
            while chunk := src.read(CHUNK):
                try:
                    text = dec.decode(chunk, final=False)
                except UnicodeDecodeError as exc:
                    bad = chunk[exc.start]
                    raise InputError(
                        f"unknown encoding: not UTF-8, and byte 0x{bad:02X} at offset "
                        f"{offset + exc.start} is undefined in Windows-1252", file=str(path),
                        expected="UTF-8 (with or without BOM) or Windows-1252") from None
                dst.write(text.encode("utf-8"))
                offset += len(chunk)
    except OSError as exc:
        raise InputError(f"cannot be read: {exc}", file=str(path)) from None


def _first_line(path: Path, gz: bool, encoding: str) -> str:
    with _open_bytes(path, gz) as fh:
        raw = fh.readline(1 << 24)
    enc = "utf-8-sig" if encoding == "utf-8-sig" else encoding
    return raw.decode(enc, errors="strict").rstrip("\r\n")


def detect_separator(header_line: str) -> str:
    """``;`` or ``,``: whichever occurs (more often) in the header line outside quotes."""
    outside = []
    inq = False
    for ch in header_line:
        if ch == '"':
            inq = not inq
        elif not inq:
            outside.append(ch)
    text = "".join(outside)
    semi, comma = text.count(";"), text.count(",")
    if semi == 0 and comma == 0:
        return ","  # a single column; the required-column check reports the problem
    return ";" if semi >= comma else ","


def inspect_csv(register: str, path: Path, workdir: Path) -> SourceFile:
    """Checksum, encoding, separator and header of a CSV register (no DuckDB yet)."""
    gz = path.name.endswith(".gz")
    sha = sha256_file(path)
    encoding, present = _scan_encoding(path, gz)
    read_path = path
    if encoding == "cp1252":
        read_path = workdir / f"{register}.utf8.csv"
        _transcode_cp1252(path, gz, read_path)
        gz_read = False
    else:
        gz_read = gz
    header_line = _first_line(read_path, gz_read, "utf-8-sig" if encoding != "cp1252" else "utf-8")
    if header_line.startswith("\ufeff"):
        header_line = header_line[1:]
    if not header_line.strip():
        raise InputError("no header line (the first line is empty)", file=str(path),
                         expected="a header line with the column names")
    sep = detect_separator(header_line)
    header = [h.strip(" \t") for h in next(csv.reader(io.StringIO(header_line), delimiter=sep))]
    free = [d for d in _LINE_DELIMS if d not in present]
    if not free:
        raise InputError("the file contains every ASCII control character 0x10-0x1F",
                         file=str(path), expected="a text file")
    return SourceFile(register=register, path=path, format="csv.gz" if gz else "csv",
                      sha256=sha, header=header, encoding=encoding, separator=sep,
                      read_path=read_path, line_delim=free[0].decode("ascii"))


def inspect_parquet(con, register: str, path: Path) -> SourceFile:
    sha = sha256_file(path)
    try:
        desc = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except Exception as exc:  # noqa: BLE001 - any reader failure is a file-level problem
        raise InputError(f"cannot be read as Parquet: {mask_text(str(exc))}",
                         file=str(path)) from None
    header = [r[0] for r in desc]
    types = {r[0]: r[1] for r in desc}
    return SourceFile(register=register, path=path, format="parquet", sha256=sha,
                      header=header, parquet_types=types)


def check_header(src: SourceFile) -> None:
    seen = set()
    for h in src.header:
        if h in seen:
            raise InputError("column name appears twice in the header",
                             file=str(src.path), column=mask_text(h),
                             expected="unique column names")
        seen.add(h)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def split_exprs(src: SourceFile) -> dict[str, str]:
    """SQL fragments over a text column ``line`` (and ``kind``, computed by ``kind``) that split
    one CSV line into fields (see :func:`load_rows`):

    ``kind``   0 = no quote, 1 = only whole-field quotes without separators or quotes inside,
               2 = anything else (RFC 4180 regular expression);
    ``f``      the fields as a list (quotes removed);
    ``shape``  the line has exactly as many fields as the header (and, kind 2, the tokens
               rebuild the line), over a projection with ``_f``; ``shape_nf`` the same
               without building the list (kinds 0 and 1 count the separators);
    ``simple_field``  field ``{i}`` of a kind 0/1 line, without building the list.
    """
    sep = src.separator
    n = len(src.header)
    s = _sql_str(sep)
    field_simple = f'(?:"[^"{sep}]*"|[^"{sep}]*)'
    simple_re = _sql_str(f"{field_simple}(?:{sep}{field_simple})*")
    tok_re = _sql_str(sep + '("(?:[^"]|"")*"|[^' + sep + '"]*)')
    tokens = f"regexp_extract_all({s} || line, {tok_re}, 1)"
    n_sep = f"(strlen(line) - strlen(replace(line, {s}, '')))"
    return {
        "kind": (f"CASE WHEN NOT contains(line, '\"') THEN 0 "
                 f"WHEN regexp_full_match(line, {simple_re}) THEN 1 ELSE 2 END"),
        "f": (f"CASE kind WHEN 0 THEN string_split(line, {s}) "
              f"WHEN 1 THEN string_split(replace(line, '\"', ''), {s}) "
              f"ELSE list_transform({tokens}, lambda x: CASE WHEN length(x) >= 2 "
              f"AND starts_with(x, '\"') AND ends_with(x, '\"') "
              f"THEN replace(x[2:-2], '\"\"', '\"') ELSE x END) END"),
        # over a projection that already has ``_f``
        "shape": (f"(len(_f) = {n} AND CASE WHEN kind < 2 THEN true ELSE "
                  f"array_to_string({tokens}, {s}) = line END)"),
        # the same without the list, for queries that do not need the fields
        "shape_nf": (f"(CASE WHEN kind < 2 THEN {n_sep} + 1 = {n} ELSE len({tokens}) = {n} "
                     f"AND array_to_string({tokens}, {s}) = line END)"),
        # field i (1-based) of a kind 0/1 line without building the list
        "simple_field": f"split_part(CASE kind WHEN 0 THEN line ELSE replace(line, '\"', '') END, {s}, {{i}})",
    }


def load_rows(con, src: SourceFile) -> None:
    """Create the view ``rows_<register>`` (see the module docstring) over the table of lines
    ``lines_<register>`` (CSV) or the Parquet file; it is materialised once, by
    :func:`evaluering.ingest._registers.build_cols`. The view has no ORDER BY: ``_row`` and
    ``_line`` are computed from the storage row id, and every query that writes output
    orders explicitly.

    ``_row`` is the 1-based ordinal of the non-blank data lines: the row id itself when the
    file has no blank line (one cheap scan checks), else a window over the row id.
    Exact duplicates are found here, once per file: the table ``dupl_<register>`` lists the
    ``_line`` of every row whose text (CSV: the line; Parquet: the JSON of the field list)
    equals that of an earlier row. A 64-bit hash finds the few candidate texts in one pass
    and the candidates are then compared as whole texts, so hash collisions cannot make a
    false duplicate. Splitting has three paths: no quote in the line →
    ``string_split``; only whole-field quotes without separators or quotes inside (what
    most writers produce) → remove the quotes, then ``string_split``; anything else → an
    RFC 4180 regular expression, with a check that the tokens rebuild the line.
    """
    t = f"rows_{src.register}"
    if src.format == "parquet":
        items = []
        for name in src.header:
            qn = '"' + name.replace('"', '""') + '"'
            typ = src.parquet_types[name].upper()
            if typ == "DATE" or typ.startswith("TIMESTAMP"):
                items.append(f"strftime(CAST({qn} AS DATE), '%Y-%m-%d')")
            else:
                items.append(f"CAST({qn} AS VARCHAR)")
        con.execute(f"""
            CREATE VIEW {t} AS
            SELECT _line - 1 AS _row, _line, _f,
                   true AS _shape_ok, 0 AS kind, NULL::VARCHAR AS line FROM (
                SELECT (file_row_number + 2)::BIGINT AS _line, [{', '.join(items)}] AS _f
                FROM read_parquet({_sql_str(str(src.path))}, file_row_number = true))""")
        _find_duplicates(con, src.register,
                         f"SELECT _line, CAST(to_json(_f) AS VARCHAR) AS txt FROM {t}")
        return
    comp = "gzip" if str(src.read_path).endswith(".gz") else "none"
    delim = "E'\\x{:02x}'".format(ord(src.line_delim))
    try:
        con.execute(f"""
            CREATE TABLE lines_{src.register} AS
            SELECT line FROM read_csv({_sql_str(str(src.read_path))},
                columns = {{'line': 'VARCHAR'}}, delim = {delim}, quote = '', escape = '',
                header = false, auto_detect = false, strict_mode = false,
                max_line_size = 1073741824, compression = '{comp}')""")
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot be read: {mask_text(str(exc))}", file=str(src.path)) from None
    # blank: NULL or only spaces/tabs (trim scans the whole line, so test the first byte first)
    blank = ("line IS NULL OR line = '' OR ((starts_with(line, ' ') OR starts_with(line, '\t')) "
             "AND trim(line, ' \t') = '')")
    n_blank = con.execute(f"SELECT count(*) FROM lines_{src.register} "
                          f"WHERE rowid > 0 AND ({blank})").fetchall()[0][0]
    row = "_rid" if n_blank == 0 else "row_number() OVER (ORDER BY _rid)"
    x = split_exprs(src)
    con.execute(f"""
        CREATE VIEW {t} AS
        SELECT _row, _line, _f, {x['shape']} AS _shape_ok, kind, line FROM (
            SELECT {row} AS _row, (_rid + 1)::BIGINT AS _line,
                   {x['f']} AS _f, kind, line
            FROM (SELECT rowid AS _rid, line, {x['kind']} AS kind
                  FROM lines_{src.register}
                  WHERE rowid > 0 AND NOT ({blank})))""")
    _find_duplicates(con, src.register,
                     f"SELECT (rowid + 1)::BIGINT AS _line, line AS txt FROM lines_{src.register} "
                     f"WHERE rowid > 0 AND NOT ({blank})")


def _find_duplicates(con, register: str, rows_sql: str) -> None:
    """``dupl_<register>(_line)``: rows whose text equals that of an earlier row.

    ``rows_sql`` yields ``_line`` and ``txt`` for every row. Pass 1 groups 64-bit hashes
    (8 bytes per row, not the texts); pass 2 compares the texts of the rows whose hash
    occurs more than once (true duplicates and rare hash collisions)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE dupl_{register} AS
        SELECT _line FROM (
            SELECT _line, min(_line) OVER (PARTITION BY txt) AS _first
            FROM ({rows_sql}) WHERE hash(txt) IN (
                SELECT h FROM (SELECT hash(txt) AS h FROM ({rows_sql}))
                GROUP BY h HAVING count(*) > 1))
        WHERE _line > _first""")
