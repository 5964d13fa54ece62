"""Per-register column layout and the SQL that computes every row's reasons.

Tables (DuckDB, in the private work database):

``cols_<r>``  one row per data row: ``_row`` (1-based data-row ordinal), ``_line``,
              ``_shape_ok`` and one normalised
              text column per known/extra column (trimmed; ``''``, ``NA``, ``.`` → NULL).
              Wide ugestatus: ``person_id`` and the split path ``_kind`` only, plus
              the long table ``wcells_ugestatus`` of the non-empty cells of its
              well-formed lines (each line is split once, there); the raw fields of
              quarantined lines are split again from ``lines_ugestatus`` when written.
``chk_<r>``   ``cols_<r>`` plus typed columns (prefixed ``t_``, each value parsed once)
              and ``_reasons`` (sorted list of reason codes; empty = accepted).
              Exact duplicates come from ``dupl_<r>`` (see :mod:`._source`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from evaluering import contract
from evaluering.errors import InputError
from evaluering.ingest._cpr import mask_text
from evaluering.ingest._source import SourceFile, split_exprs
from evaluering.ingest._sql import lit, lit_list, q

IDENT_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
WIDE_RE = re.compile(r"y_(\d{2})(\d{2})")


@dataclass
class Layout:
    register: str
    layout: str                                  # "long" or "wide"
    columns: dict[str, int]                      # known column → 1-based field position
    extras: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    wide_cols: list[tuple[str, int, int]] = field(default_factory=list)  # (name, pos, week)
    extra_types: dict[str, str] = field(default_factory=dict)

    @property
    def present(self) -> list[str]:
        """Text columns of the quarantine table, in contract order then header order."""
        if self.layout == "wide":
            return ["person_id"] + [n for n, _, _ in self.wide_cols]
        return list(self.columns) + list(self.extras)


def wide_week(name: str) -> int | None:
    m = WIDE_RE.fullmatch(name)
    if not m:
        return None
    yy, ww = int(m.group(1)), int(m.group(2))
    year = 1900 + yy if yy >= 91 else 2000 + yy
    return contract.week_index(year, ww)


def make_layout(src: SourceFile) -> Layout:
    reg = src.register
    known = [c for c, _ in contract.RAW_COLUMNS[reg]]
    pos: dict[str, int] = {}
    others: list[tuple[str, int]] = []
    for i, h in enumerate(src.header, start=1):
        key = h.lower()
        if key in known and key not in pos:
            pos[key] = i
        else:
            others.append((h, i))
    layout = "long"
    if reg == "ugestatus" and not ("uge" in pos or "ydelseskode" in pos) \
            and any(WIDE_RE.fullmatch(h.lower()) for h, _ in others):
        layout = "wide"
    required = [c for c, req in contract.RAW_COLUMNS[reg] if req]
    if layout == "wide":
        required = ["person_id"]
    found = ", ".join(mask_text(h) for h in src.header) or "(none)"
    for c in required:
        if c not in pos:
            what = f"a column named '{c}' (required by the data contract)"
            if reg == "ugestatus":
                what = ("the long layout person_id, uge, ydelseskode or the wide layout "
                        "person_id, y_YYWW, ...")
            raise InputError(f"required column missing; the header has: {found}",
                             file=str(src.path), column=c, expected=what)
    lay = Layout(register=reg, layout=layout,
                 columns={c: pos[c] for c in known if c in pos})
    for h, i in others:
        if layout == "wide" and WIDE_RE.fullmatch(h.lower()):
            try:
                wk = wide_week(h.lower())
            except ValueError:
                raise InputError("not a valid ISO week", file=str(src.path), column=mask_text(h),
                                 expected="y_YYWW with a week that exists in that year "
                                          "(YY >= 91 means 19YY, else 20YY)") from None
            lay.wide_cols.append((h.lower(), i, wk))
        elif reg != "ugestatus" and IDENT_RE.fullmatch(h) and h.lower() not in known:
            lay.extras[h] = i
        else:
            lay.ignored.append(mask_text(h))
    if layout == "wide":
        weeks = [w for _, _, w in lay.wide_cols]
        if len(set(weeks)) != len(weeks):
            raise InputError("the same week appears in two columns", file=str(src.path),
                             expected="one y_YYWW column per week")
    return lay


MANY_COLUMNS = 60  # beyond this, normalise with one list lambda (binding a macro per column is slow)


def build_cols(con, lay: Layout, src: SourceFile) -> None:
    """``cols_<r>``: normalised text columns picked by position (see the module docstring).

    Wide ugestatus keeps only ``person_id`` (for CSV lines without embedded separators picked
    with ``split_part``, without splitting the whole line) and gets a long table
    ``wcells_ugestatus`` (``_row``, ``uge``, ``code``) of the non-empty cells of well-formed
    lines, on which the code checks and the sparse output run as plain column SQL; the
    view ``rows_ugestatus`` is kept to re-split the few quarantined lines.
    """
    r = lay.register
    items = ["_row", "_line", "_shape_ok"]
    source = f"rows_{r}"
    if lay.layout == "wide":
        p = lay.columns["person_id"]
        if src.format == "parquet":
            items += [f"nz(_f[{p}]) AS person_id", "0::TINYINT AS _kind"]
        else:
            x = split_exprs(src)
            simple = x["simple_field"].format(i=p)
            items = ["_row", "_line", f"{x['shape_nf']} AS _shape_ok",
                     f"nz(CASE WHEN kind < 2 THEN {simple} ELSE ({x['f']})[{p}] END) AS person_id",
                     "kind::TINYINT AS _kind"]
    else:
        n_cols = len(lay.columns) + len(lay.extras)
        if n_cols > MANY_COLUMNS:
            source = f"(SELECT *, list_transform(_f, lambda x: nz(x)) AS _n FROM rows_{r})"
            pick = "_n[{}]"
        else:
            pick = "nz(_f[{}])"
        for c, _ in contract.RAW_COLUMNS[r]:
            if c in lay.columns:
                items.append(f"{pick.format(lay.columns[c])} AS {q(c)}")
            else:
                items.append(f"NULL::VARCHAR AS {q(c)}")
        for c, i in lay.extras.items():
            items.append(f"{pick.format(i)} AS {q(c)}")
    con.execute(f"CREATE TABLE cols_{r} AS SELECT {', '.join(items)} FROM {source}")
    if lay.layout != "wide":
        con.execute(f"DROP VIEW rows_{r}")
        con.execute(f"DROP TABLE IF EXISTS lines_{r}")
        return
    import pyarrow as pa

    con.register("_wpos_arrow", pa.table({
        "pos": pa.array([i for _, i, _ in lay.wide_cols], type=pa.int64()),
        "uge": pa.array([w for _, _, w in lay.wide_cols], type=pa.int32())}))
    con.execute("CREATE TEMP TABLE _wpos AS SELECT * FROM _wpos_arrow")
    con.unregister("_wpos_arrow")
    if src.format == "parquet":
        fields = "(SELECT _row, _f FROM rows_ugestatus)"
    else:
        # split only the well-formed lines, found by the materialised _shape_ok (a filter on
        # the view's _shape_ok would be pushed below the split and split every line twice)
        f = split_exprs(src)["f"]
        fields = (f"(SELECT _row, {f} AS _f FROM (SELECT c._row, c._kind AS kind, l.line "
                  f"FROM cols_ugestatus c JOIN lines_ugestatus l ON l.rowid + 1 = c._line "
                  f"WHERE c._shape_ok))")
    con.execute(f"""
        CREATE TABLE wcells_ugestatus AS
        SELECT _row, uge, code FROM (
            SELECT c._row, p.uge, nz(c.raw) AS code FROM (
                SELECT _row, unnest(_f) AS raw, generate_subscripts(_f, 1) AS pos
                FROM {fields}) c
            JOIN _wpos p ON c.pos = p.pos
            WHERE c.raw <> '')
        WHERE code IS NOT NULL""")


def infer_extra_types(con, lay: Layout) -> None:
    """Extra columns: BIGINT if every value is a plain integer (no leading zeros), DOUBLE if
    every value is a decimal number (point or comma), otherwise text."""
    if not lay.extras:
        return
    parts = []
    for c in lay.extras:
        parts.append(f"bool_and({q(c)} IS NULL OR regexp_full_match({q(c)}, '-?(0|[1-9]\\d{{0,17}})'))")
        parts.append(f"bool_and({q(c)} IS NULL OR regexp_full_match({q(c)}, '-?(0|[1-9]\\d{{0,17}})([.,]\\d+)?'))")
        parts.append(f"count({q(c)})")
    row = con.execute(f"SELECT {', '.join(parts)} FROM cols_{lay.register} WHERE _shape_ok").fetchall()[0]
    for k, c in enumerate(lay.extras):
        is_int, is_num, n = row[3 * k], row[3 * k + 1], row[3 * k + 2]
        if not n:
            lay.extra_types[c] = "VARCHAR"
        elif is_int:
            lay.extra_types[c] = "BIGINT"
        elif is_num:
            lay.extra_types[c] = "DOUBLE"
        else:
            lay.extra_types[c] = "VARCHAR"


def _reasons_expr(conds: list[tuple[str, str]]) -> str:
    """The reason codes whose condition holds, as one comma-separated string in sorted
    order (no per-row list lambda); turned into a list by :func:`build_chk`."""
    merged: dict[str, list[str]] = {}
    for code, cond in conds:
        merged.setdefault(code, []).append(f"({cond})")
    parts = ", ".join(f"CASE WHEN coalesce({' OR '.join(merged[c])}, false) THEN {lit(c)} END"
                      for c in sorted(merged))
    return ("CASE WHEN NOT _shape_ok THEN CASE WHEN _dup THEN 'dublet,ugyldig_linje' "
            f"ELSE 'ugyldig_linje' END ELSE concat_ws(',', {parts}) END")


def _other_cpr(cols: list[str]) -> str:
    if not cols:
        return "false"
    return " OR ".join(f"has_cpr({q(c)})" for c in cols)


def build_chk(con, lay: Layout, koder: dict[str, str] | None) -> None:
    """``chk_<r>``: ``cols_<r>`` plus the typed ``t_`` columns and ``_reasons``.

    Each value is parsed once: the typed columns (and helpers ``_h_*``) are computed in an
    inner projection, and the reason conditions test those (``pdate(x) IS NULL`` is
    ``t_x IS NULL``), so no parser runs twice per value.
    """
    r = lay.register
    typed: list[str] = []       # inner projection: parse once
    typed2: list[str] = []      # outer projection: derived from the inner one
    helpers: list[str] = []     # inner-only columns, dropped from chk
    conds: list[tuple[str, str]] = []
    lo, hi = contract.FOEDSELSAAR_RANGE
    if r == "forloeb":
        req = ["person_id", "kommune_kode", "ydelsesgruppe", "start_dato", "koen", "foedselsaar"]
        cats = {"ydelsesgruppe": contract.YDELSESGRUPPER, "afgang": contract.AFGANG,
                "koen": contract.KOEN, "herkomst": contract.HERKOMST,
                "uddannelse": contract.UDDANNELSE}
        conds += [
            ("manglende_vaerdi", " OR ".join(f"{c} IS NULL" for c in req)),
            ("cpr_i_person_id", "is_cpr(person_id)"),
            ("cpr_i_kolonne", _other_cpr([c for c in lay.present if c != "person_id"])),
            ("ukendt_kommune", "kommune_kode IS NOT NULL AND NOT kommune_in(t_kommune_kode)"),
            ("ukendt_kategori", " OR ".join(f"({c} IS NOT NULL AND NOT list_contains({lit_list(v)}, {c}))"
                                             for c, v in cats.items())),
            ("ugyldig_dato", "(start_dato IS NOT NULL AND t_start_dato IS NULL) OR "
                             "(slut_dato IS NOT NULL AND t_slut_dato IS NULL)"),
            ("slut_foer_start", "t_slut_dato < t_start_dato"),
            ("afgang_uden_slut", "(afgang IS NULL) <> (slut_dato IS NULL)"),
            ("ugyldigt_tal", "foedselsaar IS NOT NULL AND _h_foedselsaar IS NULL"),
            ("foedselsaar_uden_for_interval", f"_h_foedselsaar NOT BETWEEN {lo} AND {hi}"),
        ]
        typed += ["pdate(start_dato) AS t_start_dato", "pdate(slut_dato) AS t_slut_dato",
                  "knorm(kommune_kode) AS t_kommune_kode", "pint(foedselsaar) AS _h_foedselsaar"]
        helpers.append("_h_foedselsaar")
        typed2.append(f"CAST(CASE WHEN _h_foedselsaar BETWEEN {lo} AND {hi} THEN _h_foedselsaar END "
                      f"AS SMALLINT) AS t_foedselsaar")
    elif r == "kontakter":
        req = ["person_id", "kommune_kode", "dato", "type"]
        conds += [
            ("manglende_vaerdi", " OR ".join(f"{c} IS NULL" for c in req)),
            ("cpr_i_person_id", "is_cpr(person_id)"),
            ("cpr_i_kolonne", _other_cpr([c for c in lay.present if c != "person_id"])),
            ("ukendt_kommune", "kommune_kode IS NOT NULL AND NOT kommune_in(t_kommune_kode)"),
            ("ukendt_kategori",
             f"(type IS NOT NULL AND NOT list_contains({lit_list(contract.KONTAKT_TYPE)}, type)) OR "
             f"(kanal IS NOT NULL AND NOT list_contains({lit_list(contract.KANAL)}, kanal))"),
            ("kanal_uden_samtale",
             f"kanal IS NOT NULL AND list_contains({lit_list(contract.KONTAKT_TYPE)}, type) "
             "AND type <> 'samtale'"),
            ("ugyldig_dato", "dato IS NOT NULL AND t_dato IS NULL"),
            ("ugyldigt_tal", "(minutter IS NOT NULL AND t_minutter IS NULL) OR "
                             "(udgift_kr IS NOT NULL AND t_udgift_kr IS NULL)"),
            ("negativt_tal", "t_minutter < 0 OR t_udgift_kr < 0"),
        ]
        typed += ["pdate(dato) AS t_dato", "knorm(kommune_kode) AS t_kommune_kode",
                  "pnum(minutter) AS t_minutter", "pnum(udgift_kr) AS t_udgift_kr"]
    elif lay.layout == "long":
        codes = lit_list(sorted(koder or {}))
        conds += [
            ("manglende_vaerdi", "person_id IS NULL OR uge IS NULL"),
            ("cpr_i_person_id", "is_cpr(person_id)"),
            ("cpr_i_kolonne", _other_cpr([c for c in lay.present if c != "person_id"])),
            ("ugyldig_uge", "uge IS NOT NULL AND t_uge IS NULL"),
            ("ukendt_ydelseskode", f"ydelseskode IS NOT NULL AND NOT list_contains({codes}, ydelseskode)"),
        ]
        typed += ["iso_week(uge) AS t_uge"]
    else:  # wide ugestatus: cell problems come from wcells_ugestatus (joined below)
        conds += [
            ("manglende_vaerdi", "person_id IS NULL"),
            ("cpr_i_person_id", "is_cpr(person_id)"),
            ("cpr_i_kolonne", "_w_cpr"),
            ("ukendt_ydelseskode", "_w_unknown"),
        ]
    conds.append(("dublet", "_dup"))
    for c, typ in lay.extra_types.items():
        if typ == "BIGINT":
            typed.append(f"try_cast({q(c)} AS BIGINT) AS {q('t_' + c)}")
        elif typ == "DOUBLE":
            typed.append(f"pnum({q(c)}) AS {q('t_' + c)}")
    source = f"cols_{r}"
    exclude = ["_dup"] + helpers
    if lay.layout == "wide":
        con.execute("""
            CREATE TEMP TABLE _wbad AS
            SELECT _row, bool_or(k.code IS NULL) AS _w_unknown, bool_or(has_cpr(w.code)) AS _w_cpr
            FROM wcells_ugestatus w LEFT JOIN _koder k ON w.code = k.code
            GROUP BY _row HAVING bool_or(k.code IS NULL) OR bool_or(has_cpr(w.code))""")
        source = (f"(SELECT c.*, coalesce(b._w_unknown, false) AS _w_unknown, "
                  f"coalesce(b._w_cpr, false) AS _w_cpr FROM cols_{r} c "
                  f"LEFT JOIN _wbad b USING (_row))")
        exclude += ["_w_unknown", "_w_cpr", "_kind"]
    inner = ", ".join(["*"] + typed)
    sel = ", ".join([f"* EXCLUDE ({', '.join(exclude)})"] + typed2
                    + [f"{_reasons_expr(conds)} AS _rs"])
    # exact duplicates (every row but the first of the same text) were listed when the
    # file was read: dupl_<r> (see _source.load_rows)
    con.execute(f"""
        CREATE TABLE chk_{r} AS
        SELECT * EXCLUDE (_rs), CASE WHEN _rs = '' THEN []::VARCHAR[]
                                     ELSE string_split(_rs, ',') END AS _reasons
        FROM (SELECT {sel} FROM (SELECT {inner} FROM (
            SELECT s.*, d._line IS NOT NULL AS _dup
            FROM {source} s LEFT JOIN dupl_{r} d ON s._line = d._line)))""")
    con.execute(f"DROP TABLE cols_{r}")


def add_reason(con, register: str, rows_table: str, code: str) -> None:
    con.execute(f"""
        UPDATE chk_{register} SET _reasons = list_sort(list_append(_reasons, {lit(code)}))
        WHERE _row IN (SELECT _row FROM {rows_table})""")


def flag_overlaps(con) -> int:
    """forloeb: a spell that overlaps an earlier *kept* spell of the same person in the same
    ydelsesgruppe gets ``overlap`` (greedy in line order; an open spell runs to infinity;
    spells overlap when they share at least one day). Returns the number flagged."""
    pairs = con.execute("""
        WITH c AS (SELECT _row, person_id, ydelsesgruppe, t_start_dato AS s,
                          coalesce(t_slut_dato, DATE '9999-12-31') AS e
                   FROM chk_forloeb WHERE len(_reasons) = 0)
        SELECT b._row AS later, a._row AS earlier
        FROM c a JOIN c b ON a.person_id = b.person_id AND a.ydelsesgruppe = b.ydelsesgruppe
             AND a._row < b._row AND b.s <= a.e AND a.s <= b.e
        ORDER BY later, earlier""").fetchall()
    if not pairs:
        return 0
    earlier: dict[int, list[int]] = {}
    for later, e in pairs:
        earlier.setdefault(later, []).append(e)
    quarantined: set[int] = set()
    for node in sorted(earlier):
        if any(e not in quarantined for e in earlier[node]):
            quarantined.add(node)
    con.execute("CREATE OR REPLACE TEMP TABLE _ovl (_row BIGINT)")
    _insert_many(con, "_ovl", sorted(quarantined))
    add_reason(con, "forloeb", "_ovl", "overlap")
    return len(quarantined)


def _insert_many(con, table: str, values: list[int]) -> None:
    import pyarrow as pa

    tbl = pa.table({"_row": pa.array(values, type=pa.int64())})
    con.register("_tmp_rows", tbl)
    con.execute(f"INSERT INTO {table} SELECT _row FROM _tmp_rows")
    con.unregister("_tmp_rows")


def flag_week_conflicts(con, lay: Layout) -> int:
    """ugestatus: a second record of the same person and week (long) or the same person
    (wide) among otherwise valid rows gets ``uge_konflikt`` (the first one is kept)."""
    key = "person_id, t_uge" if lay.layout == "long" else "person_id"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _konf AS
        SELECT _row FROM (
            SELECT _row, row_number() OVER (PARTITION BY {key} ORDER BY _row) AS k
            FROM chk_ugestatus WHERE len(_reasons) = 0) WHERE k > 1""")
    n = con.execute("SELECT count(*) FROM _konf").fetchall()[0][0]
    if n:
        add_reason(con, "ugestatus", "_konf", "uge_konflikt")
    return n
