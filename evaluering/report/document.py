"""Tables, figures and the Typst document of the report (Danish), all disclosure controlled."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluering.report import figures as F
from evaluering.report import format as fmt
from evaluering.report.analysis import KM_GROUPS, RR_E_POST, RR_MBAR, Analysis
from evaluering.report.disclosure import (DisclosureRules, check_printable,
                                          complementary_suppression, primary_mask)
from evaluering.report.render import (SHARE_OUTCOMES, UDFALD_NAVN, YDELSE_NAVN, Gate, effect_text,
                                      esc, figure, fill, paragraphs, table)

TEMPLATES = Path(__file__).with_name("templates")
LAST_SUPPRESSION: dict[str, int] = {}
RECORD_KEYS = ("forsoeg", "udfald", "estimate", "se", "ci_low", "ci_high", "p", "p_adj", "method",
               "inference", "n_persons", "n_municipalities_treated", "n_municipalities_control",
               "pretrend_p", "verdict")


def _kommune_navn() -> dict[str, str]:
    from evaluering.reference import kommuner

    k = kommuner()
    return dict(zip(k["kode"], k["navn"]))


# --------------------------------------------------------------------------- texts
def load_texts(folder: Path | None) -> dict[str, str]:
    """The shipped Danish templates, with keys overridden by ``folder/tekster.toml``."""
    texts = tomllib.loads((TEMPLATES / "tekster.toml").read_text(encoding="utf-8"))
    if folder is not None:
        f = Path(folder) / "tekster.toml"
        if f.is_file():
            texts.update(tomllib.loads(f.read_text(encoding="utf-8")))
    return {k: str(v) for k, v in texts.items()}


# --------------------------------------------------------------------------- tables
def _records_out(analysis: Analysis, rules: DisclosureRules) -> list[dict[str, Any]]:
    recs = []
    for r in analysis.records.to_dict(orient="records"):
        sup = bool(r["suppressed"])
        out = {}
        for k in RECORD_KEYS + ("enhed", "n_persons_exposed", "p_adj_method", "note"):
            v = r.get(k)
            if isinstance(v, float) and not np.isfinite(v):
                v = None
            if isinstance(v, (np.integer,)):
                v = int(v)
            out[k] = v
        # person counts themselves are numbers on persons: a count of 1..k-1 is not published,
        # nor one that differenced with a published total leaves 1..k-1
        for k, hide in zip(("n_persons", "n_persons_exposed"), person_counts_hidden(analysis, r, rules)):
            if hide:
                out[k] = None
        if not sup:
            for k in ("estimate", "ci_low", "ci_high"):
                check_printable(out[k], out["n_persons_exposed"], rules, what=f"{r['forsoeg']}/{r['udfald']} {k}")
        out["suppressed"] = sup
        recs.append(out)
    return recs


def person_counts_hidden(analysis: Analysis, rec: dict, rules: DisclosureRules) -> tuple[bool, bool]:
    """Whether a record's ``n_persons`` / ``n_persons_exposed`` must be hidden: when the count
    itself is 1..k−1, or when subtracting it from (or it from) a total printed in the trial's
    municipality table (control municipalities' persons; trial municipalities' persons) leaves
    1..k−1 persons, a small group recoverable by differencing."""
    pe = analysis.persons
    pe = pe[pe["forsoeg"] == rec["forsoeg"]]
    ctl = float(pe.loc[pe["rolle"] == "kontrol", "n_personer"].sum())
    trt = float(pe.loc[pe["rolle"] == "behandlet", "n_personer"].sum())

    def small(v) -> bool:
        return v is not None and bool(rules.is_small(abs(v)))

    n, ne = rec.get("n_persons"), rec.get("n_persons_exposed")
    hide_n = n is not None and (small(n) or small(n - ctl) or small(n - trt))
    hide_ne = ne is not None and (small(ne) or small(trt - ne))
    return hide_n, hide_ne


def rr_printable(analysis: Analysis, rules: DisclosureRules) -> pd.DataFrame:
    """The Rambachan–Roth bounds with the numbers of suppressed records blanked; the others
    are checked against their record's exposed persons (they are derived from its estimate)."""
    rr = analysis.rambachan_roth
    if not len(rr):
        return rr
    recs = analysis.records.set_index(["forsoeg", "udfald"])
    rr = rr.copy()
    for i, r in rr.iterrows():
        key = (r["forsoeg"], r["udfald"])
        if bool(recs["suppressed"].get(key, False)):
            rr.loc[i, ["lb", "ub", "breakdown"]] = np.nan
        else:
            for c in ("lb", "ub", "breakdown"):
                check_printable(r[c], recs["n_persons_exposed"].get(key), rules, what=f"{key} RR {c}")
    return rr


def kommune_table(analysis: Analysis, f, rules: DisclosureRules, *, count: bool = True) -> pd.DataFrame:
    """Persons and spells per treated municipality plus the control total, suppressed.

    Columns: label, kode, start, personer, forloeb, personer_sup, forloeb_sup. Primary
    suppression on persons; complementary suppression down the columns (the 'i alt' row is
    a published margin)."""
    pe = analysis.persons
    pe = pe[pe["forsoeg"] == f.id]
    navn = _kommune_navn()
    tr = pe[pe["rolle"] == "behandlet"].set_index("kommune_kode")
    rows = []
    for k in f.kommuner:
        n_p = int(tr["n_personer"].get(k, 0))
        n_f = int(tr["n_forloeb"].get(k, 0))
        rows.append({"label": f"{k} {navn.get(k, k)}", "kode": k, "start": f.start_for(k),
                     "personer": n_p, "forloeb": n_f})
    df = pd.DataFrame(rows)
    vals = df[["personer", "forloeb"]].to_numpy(float)
    counts = np.column_stack([df["personer"].to_numpy(float)] * 2)
    prim = primary_mask(counts, rules)
    mask, _, col_tot = complementary_suppression(vals, prim, rows=False, cols=True)
    df["personer_sup"] = mask[:, 0]
    df["forloeb_sup"] = mask[:, 1]
    if count:   # the manifest's suppression counts: once per table (also printed in the PDF)
        LAST_SUPPRESSION["primaer"] = LAST_SUPPRESSION.get("primaer", 0) + int(prim.sum())
        LAST_SUPPRESSION["sekundaer"] = LAST_SUPPRESSION.get("sekundaer", 0) + int(mask.sum() - prim.sum())
    co = pe[pe["rolle"] == "kontrol"]
    tot = {"label": "Forsøgskommuner i alt", "kode": "", "start": None,
           "personer": int(df["personer"].sum()), "forloeb": int(df["forloeb"].sum()),
           "personer_sup": bool(col_tot[0]), "forloeb_sup": bool(col_tot[1])}
    ctl = {"label": f"Sammenligningskommuner i alt ({co['kommune_kode'].nunique()})", "kode": "",
           "start": None, "personer": int(co["n_personer"].sum()), "forloeb": int(co["n_forloeb"].sum())}
    csmall = rules.is_small(ctl["personer"])
    ctl["personer_sup"] = ctl["forloeb_sup"] = bool(csmall)
    return pd.concat([df, pd.DataFrame([tot, ctl])], ignore_index=True)


def write_tables(tmp: Path, analysis: Analysis, forsoeg, rules: DisclosureRules) -> dict[str, Path]:
    from evaluering._atomic import write_json, write_text

    LAST_SUPPRESSION.clear()
    files: dict[str, Path] = {}
    recs = _records_out(analysis, rules)
    write_json(tmp / "resultater.json", recs)
    files["resultater"] = tmp / "resultater.json"
    (tmp / "tabeller").mkdir(exist_ok=True)
    summ = pd.DataFrame(recs)[list(RECORD_KEYS) + ["enhed", "n_persons_exposed", "suppressed"]]
    write_text(tmp / "tabeller" / "sammenfatning.csv", summ.to_csv(index=False, float_format="%.10g"))
    sens = analysis.sensitivity
    if len(sens):
        sup = analysis.records.set_index(["forsoeg", "udfald"])["suppressed"]
        n_exp = analysis.records.set_index(["forsoeg", "udfald"])["n_persons_exposed"]
        sens = sens.copy()
        for i, r in sens.iterrows():
            key = (r["forsoeg"], r["udfald"])
            if bool(sup.get(key, False)):
                sens.loc[i, ["estimate", "ci_low", "ci_high"]] = np.nan
            else:
                check_printable(r["estimate"], n_exp.get(key), rules, what=f"{key} sensitivity")
        write_text(tmp / "tabeller" / "foelsomhed.csv", sens.to_csv(index=False, float_format="%.10g"))
        files["foelsomhed"] = tmp / "tabeller" / "foelsomhed.csv"
    files["sammenfatning"] = tmp / "tabeller" / "sammenfatning.csv"
    rr = rr_printable(analysis, rules)
    if len(rr):
        write_text(tmp / "tabeller" / "rambachan_roth.csv", rr.to_csv(index=False, float_format="%.10g"))
        files["rambachan_roth"] = tmp / "tabeller" / "rambachan_roth.csv"
    for f in forsoeg:
        kt = kommune_table(analysis, f, rules)
        csv = pd.DataFrame({
            "kommune": kt["label"],
            "start": [s.isoformat() if s else "" for s in kt["start"]],
            "personer": [None if s else v for v, s in zip(kt["personer"], kt["personer_sup"])],
            "forloeb": [None if s else v for v, s in zip(kt["forloeb"], kt["forloeb_sup"])],
            "undertrykt": kt["personer_sup"] | kt["forloeb_sup"],
        })
        for v, n, s in zip(kt["personer"], kt["personer"], kt["personer_sup"]):
            if not s:
                check_printable(v, n, rules, what=f"{f.id} persons")
        csv["personer"] = csv["personer"].astype("Int64")
        csv["forloeb"] = csv["forloeb"].astype("Int64")
        write_text(tmp / "tabeller" / f"kommuner_{f.id}.csv", csv.to_csv(index=False))
        files[f"kommuner_{f.id}"] = tmp / "tabeller" / f"kommuner_{f.id}.csv"
    LAST_SUPPRESSION["undertrykte_resultater"] = int(analysis.records["suppressed"].sum())
    return files


# --------------------------------------------------------------------------- figures
def _main_outcome(f) -> str | None:
    for o in f.udfald:
        if o != "hazard_job":
            return o
    return None


def _period_start(nr: int, label: str) -> dt.date:
    if "H" in label:
        y, h = divmod(int(nr), 2)
        return dt.date(y, 1 + 6 * h, 1)
    y, q = divmod(int(nr), 4)
    return dt.date(y, 1 + 3 * q, 1)


def _trend_series(tp: pd.DataFrame, o: str, pp: pd.DataFrame) -> pd.DataFrame:
    """Spell-weighted mean of ``o`` per period for trial and control municipalities, with the
    distinct persons behind each point (``pp``: this trial's rows of period_persons)."""
    rows = []
    for gruppe, rolle in (("Forsøgskommuner", "behandlet"), ("Sammenligningskommuner", "kontrol")):
        s = tp[tp["rolle"] == rolle].groupby("periode_nr").agg(
            s=(f"{o}_sum", "sum"), n=(f"{o}_n", "sum"), periode=("periode", "first"))
        n_pers = pp[pp["gruppe"] == rolle].set_index("noegle")[f"n_{o}"]
        for nr, r in s.iterrows():
            rows.append({"gruppe": gruppe, "periode_fra": _period_start(nr, r["periode"]),
                         "vaerdi": r["s"] / r["n"] if r["n"] > 0 else np.nan,
                         "personer": int(n_pers.get(nr, 0))})
    return pd.DataFrame(rows)


def event_point_persons(e: pd.Series, pp: pd.DataFrame, o: str, base_period: str | None) -> np.ndarray:
    """Persons behind each event-study point: an effect at event time e compares the treated
    cells at e with those of its base period (e−1 before start with a varying base, else −1)
    and with control cells, so the point carries the smallest of the treated counts at e and at
    its base and the smallest non-empty control period's count."""
    pers = pp[pp["gruppe"] == "e"].set_index("noegle")[f"n_{o}"]
    # the comparison side: every point also rests on control cells of some periods; take the
    # smallest non-empty control period as a conservative bound (normally far above k)
    ctl = pp.loc[pp["gruppe"] == "kontrol", f"n_{o}"]
    ctl_min = float(ctl[ctl > 0].min()) if (ctl > 0).any() else 0.0
    out = []
    for v in e.astype(int):
        base = v - 1 if (v < 0 and base_period != "universal") else -1
        out.append(min(pers.get(v, 0), pers.get(base, 0), ctl_min))
    return np.asarray(out, dtype=float)


def write_figures(tmp: Path, analysis: Analysis, forsoeg, rules: DisclosureRules) -> dict[str, Any]:
    from evaluering.survival import kaplan_meier_cells

    k = rules.min_persons
    out: dict[str, Any] = {}
    fdir = tmp / "figurer"
    navn = _kommune_navn()
    for f in forsoeg:
        tp = analysis.panels[f.id]
        o = _main_outcome(f)
        starts = sorted({f.start_for(x) for x in f.kommuner})
        pct = o in SHARE_OUTCOMES
        lab = UDFALD_NAVN.get(o, o)
        if o is not None:
            pp = analysis.period_persons
            pp = pp[pp["forsoeg"] == f.id]
            ser = _trend_series(tp, o, pp)
            fig = F.trend_figure(ser, f"{f.navn}: {lab}", lab + (" (pct.)" if pct else ""), starts, k,
                                 procent=pct)
            out[f"{f.id}-udvikling"] = {"paths": F.save(fig, fdir, f"{f.id}-udvikling"),
                                        "alt": f"Linjediagram: {lab} pr. periode i forsøgskommunerne og "
                                               f"sammenligningskommunerne; stiplede linjer markerer forsøgsstart.",
                                        "caption": f"{lab}: forsøgs- og sammenligningskommuner. Punkter på "
                                                   f"færre end {k} personer er udeladt."}
            res = analysis.results.get((f.id, o))
            if res is not None and "event" in res.components:
                ev = res.component("event")
                ev["personer"] = event_point_persons(ev["e"], pp, o, res.info.get("base_period"))
                fig = F.event_figure(ev, f"Effekt over tid: {lab}", "Effekt" + (" (pct.-point)" if pct else ""),
                                     k, procent=pct)
                out[f"{f.id}-eventstudie"] = {
                    "paths": F.save(fig, fdir, f"{f.id}-eventstudie"),
                    "alt": f"Punktdiagram med 95 pct. konfidensintervaller: effekten på {lab} i perioderne "
                           "før og efter forsøgsstart.",
                    "caption": f"Effekt af forsøget på {lab} før og efter start (Callaway–Sant'Anna, "
                               "95 pct. punktvise intervaller)."}
            # small multiples: each treated municipality vs the control mean
            ctl = tp[tp["rolle"] == "kontrol"].groupby("periode_nr").agg(
                s=(f"{o}_sum", "sum"), n=(f"{o}_n", "sum"))
            ctl_pers = pp[pp["gruppe"] == "kontrol"].set_index("noegle")[f"n_{o}"]
            ctl_n = ctl.index.map(lambda nr: ctl_pers.get(nr, 0)).to_numpy(float)
            # the control mean of a period is drawn only when it rests on >= k persons
            ctl_mean = (ctl["s"] / ctl["n"].where(ctl["n"] > 0)).where(ctl_n >= k)
            kom = pp[pp["gruppe"] == "kommune"].set_index(["kommune_kode", "noegle"])[f"n_{o}"]
            rows = []
            for kode in f.kommuner:
                s = tp[tp["kommune_kode"] == kode]
                for r in s.itertuples():
                    n = getattr(r, f"{o}_n")
                    fra = _period_start(r.periode_nr, r.periode)
                    rows.append({"kommune": navn.get(kode, kode), "periode_fra": fra,
                                 "vaerdi": getattr(r, f"{o}_sum") / n if n > 0 else np.nan,
                                 # distinct persons of the municipality and period (DuckDB)
                                 "personer": int(kom.get((kode, r.periode_nr), 0)),
                                 "kontrol": ctl_mean.get(r.periode_nr, np.nan)})
            if rows:
                fig = F.small_multiples(pd.DataFrame(rows), f"{lab} pr. forsøgskommune (blå) og "
                                        "sammenligningskommunerne (orange)", k, procent=pct)
                out[f"{f.id}-kommuner"] = {
                    "paths": F.save(fig, fdir, f"{f.id}-kommuner"),
                    "alt": f"Små diagrammer, et pr. forsøgskommune: {lab} over tid mod gennemsnittet i "
                           "sammenligningskommunerne.",
                    "caption": f"{lab} pr. forsøgskommune. Perioder med færre end {k} personer er udeladt."}
        # Kaplan-Meier: exposed spells vs control spells started in the same period
        cells = analysis.survival[f.id]
        first = min(starts)
        q0 = first.year * 4 + (first.month - 1) // 3
        exp_c = cells[cells["eksponeret"] == 1].assign(gruppe=KM_GROUPS[0])
        ctl_c = cells[(cells["behandlet"] == 0) & (cells["start_kvartal_nr"] >= q0)].assign(
            gruppe=KM_GROUPS[1])
        both = pd.concat([exp_c, ctl_c], ignore_index=True)
        hz = analysis.km_horizon.get(f.id, {})
        if len(exp_c) and len(ctl_c) and min(hz.get(g, 0) for g in KM_GROUPS) > 0:
            km = kaplan_meier_cells(both, by="gruppe").summary()
            # each curve stops at the last week with >= k distinct persons at risk
            km = km[km["time"] <= km["gruppe"].map(hz).fillna(0)]
            fig = F.km_figure(km, f"{f.navn}: andel endnu ikke i job", k)
            out[f"{f.id}-km"] = {
                "paths": F.save(fig, fdir, f"{f.id}-km"),
                "alt": "Trappekurver (Kaplan–Meier): andelen af forløb, der endnu ikke er gået i job, "
                       "efter uger siden start, for forsøgskommunerne efter start og "
                       "sammenligningskommunerne i samme periode.",
                "caption": f"Kaplan–Meier: andel endnu ikke i job. Kurven stopper, når færre end {k} "
                           "personer er tilbage."}
        # resource bars: mean per spell, trial and control municipalities, before/after
        res_out = [x for x in f.udfald if x in ("samtaler_pr_forloeb", "laegeattester_pr_forloeb",
                                                 "rehab_pr_forloeb", "minutter_pr_forloeb")]
        if res_out:
            fq = first.year * 2 + (first.month - 1) // 6 if tp["periode"].iloc[0].find("H") >= 0 \
                else first.year * 4 + (first.month - 1) // 3
            rows = []
            pp_f = analysis.period_persons
            pp_f = pp_f[pp_f["forsoeg"] == f.id]
            pp_f = pp_f.assign(**{c: pp_f[c].fillna(0) for c in pp_f.columns if c.startswith("n_")})
            rolle_of = {"Forsøg før": "behandlet", "Forsøg efter": "behandlet",
                        "Sammenl. før": "kontrol", "Sammenl. efter": "kontrol"}
            for x in res_out:
                for gruppe, sel in (("Forsøg før", (tp["rolle"] == "behandlet") & (tp["periode_nr"] < fq)),
                                    ("Forsøg efter", (tp["rolle"] == "behandlet") & (tp["periode_nr"] >= fq)),
                                    ("Sammenl. før", (tp["rolle"] == "kontrol") & (tp["periode_nr"] < fq)),
                                    ("Sammenl. efter", (tp["rolle"] == "kontrol") & (tp["periode_nr"] >= fq))):
                    s = tp[sel]
                    n = s[f"{x}_n"].sum()
                    rows.append({"udfald": UDFALD_NAVN[x], "gruppe": gruppe,
                                 "vaerdi": s[f"{x}_sum"].sum() / n if n > 0 else np.nan,
                                 "personer": int(pp_f[(pp_f["gruppe"] == rolle_of[gruppe]) & pp_f["noegle"].isin(
                                     s["periode_nr"].unique())][f"n_{x}"].max() if len(s) else 0)})
            fig = F.resource_figure(pd.DataFrame(rows), "Ressourceforbrug pr. forløb", k)
            out[f"{f.id}-ressourcer"] = {
                "paths": F.save(fig, fdir, f"{f.id}-ressourcer"),
                "alt": "Søjlediagrammer: gennemsnitligt ressourceforbrug pr. forløb i forsøgs- og "
                       "sammenligningskommuner før og efter forsøgsstart.",
                "caption": "Ressourceforbrug pr. forløb i de første 26 uger, før og efter den første start."}
    return out


# --------------------------------------------------------------------------- typst
def _ordning_navn(name: str) -> str:
    """The scheme's full name from the built-in catalogue (free text kept as given)."""
    from evaluering.reference.catalogue import find_ordning

    o = find_ordning(name)
    return o.navn if o is not None else name


def _inferens_tekst(opts) -> str:
    return ("en klynge-bootstrap med én vægt pr. kommune (multiplikator-bootstrap)"
            if opts.inferens == "bootstrap" else "randomiseringsinferens over kommuner")


def _verdict_word(v: str) -> str:
    return {"undertrykt": "undertrykt (for få personer)", "ikke estimeret": "ikke estimeret"}.get(v, v)


def typst_source(analysis: Analysis, forsoeg, rules: DisclosureRules, texts: dict[str, str],
                 figs: dict[str, Any], cfg, casestudie: dict[str, Any] | None = None
                 ) -> tuple[str, Gate]:
    """The report's Typst source and the Gate that printed its numbers; ``casestudie`` (from
    :func:`evaluering.report.casestudie.chapter_for_report`) adds the AUK01 appendix."""
    gate = Gate(rules)
    navn = _kommune_navn()
    opts = analysis.options
    recs = analysis.records.to_dict(orient="records")
    just = "Holms metode" if opts.justering == "holm" else "Benjamini–Hochbergs metode"
    inferens = _inferens_tekst(opts)
    alle_kommuner = sorted({k for f in forsoeg for k in f.kommuner})
    slut = max(f.slut for f in forsoeg)
    ordninger = sorted({_ordning_navn(f.ordning) for f in forsoeg})
    title = texts["titel"]
    S: list[str] = []
    tq = title.replace("\\", "\\\\").replace('"', '\\"')
    S.append(f'#set document(title: "{tq}", author: "evaluering")')
    S.append('#set text(font: "DejaVu Sans", size: 10pt, lang: "da")')
    S.append('#set page(paper: "a4", margin: (x: 2.2cm, y: 2.4cm), numbering: "1")')
    S.append('#set heading(numbering: "1.1")')
    S.append("#set par(justify: true)")
    S.append("#show table: set text(size: 8.5pt, hyphenate: true)")
    S.append("#show table: set par(justify: false)")
    S.append("#show heading: set text(hyphenate: false)")
    S.append("#show heading: set par(justify: false)")
    S.append("#show figure.where(kind: table): set block(breakable: true)")
    # front page
    S.append('#page(numbering: none)[#set par(justify: false)\n#v(5cm)')
    S.append(f"#text(size: 22pt, weight: \"bold\")[{esc(title)}]\n\n#v(0.5cm)")
    S.append(f"#text(size: 13pt)[{esc(texts['undertitel'])}]\n\n#v(1cm)")
    S.append(esc(", ".join(ordninger)) + "\n\n")
    S.append(esc("Evalueringsperiode til og med " + gate.fact(slut, "evaluation end date", fmt.dato)))
    S.append("]")
    S.append(f"#heading(numbering: none)[{esc('Resumé')}]")
    S.append(paragraphs(fill(texts["resume"], antal_forsoeg=gate.fact(len(forsoeg), "number of trials"),
                             ordninger=", ".join(ordninger),
                             antal_kommuner=gate.fact(len(alle_kommuner), "number of municipalities"),
                             kommuner=", ".join(navn.get(k, k) for k in alle_kommuner),
                             slut=gate.fact(slut, "evaluation end", fmt.dato))))
    S.append(f"#heading(numbering: none)[{esc('Forord')}]")
    S.append(paragraphs(texts["forord"]))
    S.append("#outline(depth: 1)")
    S.append("#show heading.where(level: 1): it => pagebreak(weak: true) + it")
    # overall summary
    S.append(f"= {esc('Samlet sammenfatning og anbefalinger')}")
    S.append(paragraphs(fill(texts["sammenfatning_intro"], justering=just)))
    rows = []
    fnavn = {f.id: f.navn for f in forsoeg}
    prev = None
    for r in recs:
        e, ci = effect_text(gate, r, f"{r['forsoeg']}/{r['udfald']}")
        first = r["forsoeg"] != prev
        prev = r["forsoeg"]
        rows.append([esc(fnavn[r["forsoeg"]]) if first else "", esc(UDFALD_NAVN.get(r["udfald"], r["udfald"])), esc(e),
                     esc(ci), esc(_verdict_word(r["verdict"]))])
    S.append("#figure(kind: table, caption: [" + esc("Effekter af alle forsøg og udfald") + "])[\n" +
             table(["Forsøg", "Udfald", "Effekt", "95 %-interval", "Vurdering"], rows,
                   widths="(1.6fr, 1.6fr, auto, auto, 1.1fr)", align="left") + "\n]")
    S.append(paragraphs(texts["anbefalinger"]))
    # one chapter per trial
    for f in forsoeg:
        fr = [r for r in recs if r["forsoeg"] == f.id]
        S.append(f"= {esc(f.navn)}")
        S.append(f"== {esc('Indledning')}")
        S.append(paragraphs(fill(texts["indledning"], navn=f.navn, ordning=_ordning_navn(f.ordning),
                                 start=gate.fact(f.start, "trial start", fmt.dato),
                                 slut=gate.fact(f.slut, "trial end", fmt.dato))))
        S.append(f"== {esc('Sammenfatning')}")
        cnt = {v: sum(1 for r in fr if r["verdict"] == v) for v in ("bedre", "ingen påviselig forskel", "dårligere")}
        ops = (f"Vurderingerne: bedre på {gate.fact(cnt['bedre'], 'count of verdicts')}, "
               f"ingen påviselig forskel på {gate.fact(cnt['ingen påviselig forskel'], 'count of verdicts')} "
               f"og dårligere på {gate.fact(cnt['dårligere'], 'count of verdicts')} udfald.")
        S.append(paragraphs(fill(texts["sammenfatning"], antal_udfald=gate.fact(len(fr), "number of outcomes"),
                                 opsummering=ops)))
        S.append(f"== {esc('Forsøgets baggrund, formål, målgruppe og forventede resultater')}")
        b = dict(f.beskrivelse)
        note = f"\n\nBemærk: {b['note']}" if b.get("note") else ""
        S.append(paragraphs(fill(texts["baggrund"], baggrund=b.get("baggrund", "(ikke beskrevet i forsøgskataloget)"),
                                 formaal=b.get("formaal", "(ikke beskrevet i forsøgskataloget)"),
                                 maalgruppe=" og ".join(YDELSE_NAVN.get(g, g) for g in f.maalgruppe),
                                 antal_kommuner=gate.fact(len(f.kommuner), "number of municipalities"),
                                 note=note)))
        S.append(f"== {esc('Evalueringsmetode')}")
        n_co = fr[0]["n_municipalities_control"] if fr else 0
        t_opts = analysis.trials[f.id].options if f.id in analysis.trials else opts
        S.append(paragraphs(fill(texts["evalueringsmetode"],
                                 antal_kontrol=gate.fact(n_co, "number of control municipalities"),
                                 periode="halvårs" if t_opts.periode == "halvaar" else "kvartals",
                                 inferens=_inferens_tekst(t_opts))))
        nbi = analysis.notebooks.get(f.id)
        if nbi:
            S.append(paragraphs(fill(texts["notesbog"], notesbog=nbi["notesbog"],
                                     sha256=gate.fact(nbi["sha256_kilde"][:16], "notebook checksum",
                                                      formatter=str),
                                     revisionsfil=nbi["revisionsfil"])))
        kt = kommune_table(analysis, f, rules, count=False)
        trows = []
        for r in kt.itertuples():
            trows.append([esc(r.label), esc(gate.fact(r.start, "trial start", fmt.dato) if r.start else ""),
                          esc(gate.num(r.personer, r.personer, fmt.heltal, suppressed=r.personer_sup,
                                       what=f"{f.id} persons {r.label}")),
                          esc(gate.num(r.forloeb, r.personer, fmt.heltal, suppressed=r.forloeb_sup,
                                       what=f"{f.id} spells {r.label}"))])
        S.append("#figure(kind: table, caption: [" + esc("Forsøgskommuner: personer og forløb i målgruppen "
                                                          "i evalueringsperioden") + "])[\n" +
                 table(["Kommune", "Start", "Personer", "Forløb"], trows,
                       align="(left, left, right, right)") + "\n]")
        S.append(f"== {esc('Forsøgets resultater og læring')}")
        S.append(paragraphs(texts["resultater"]))
        rrows = []
        for r in fr:
            e, ci = effect_text(gate, r, f"{f.id}/{r['udfald']}")
            sup = bool(r["suppressed"])
            rrows.append([esc(UDFALD_NAVN.get(r["udfald"], r["udfald"])), esc(e), esc(ci),
                          esc(gate.num(r["p_adj"], r["n_persons_exposed"], fmt.p_vaerdi, suppressed=sup,
                                       what="p_adj")),
                          esc(gate.num(r["pretrend_p"], r["n_persons_exposed"], fmt.p_vaerdi, suppressed=sup,
                                       what="pretrend p")),
                          esc(gate.num(r["n_persons"], r["n_persons"], fmt.heltal,
                                       suppressed=person_counts_hidden(analysis, r, rules)[0],
                                       what="persons")),
                          esc(_verdict_word(r["verdict"]))])
        S.append("#figure(kind: table, caption: [" + esc(f"Effekter: {f.navn}") + "])[\n" +
                 table(["Udfald", "Effekt", "95 %-interval", "Justeret p", "Parallelle tendenser, p",
                        "Personer", "Vurdering"], rrows) + "\n]")
        for key in ("udvikling", "eventstudie", "km", "ressourcer", "kommuner"):
            fg = figs.get(f"{f.id}-{key}")
            if fg:
                S.append(figure(f"figurer/{f.id}-{key}.svg", fg["alt"], fg["caption"]))
        S.append(f"== {esc('Forsøgets anbefalinger')}")
        good = [UDFALD_NAVN.get(r["udfald"], r["udfald"]).lower() for r in fr if r["verdict"] == "bedre"]
        bad = [UDFALD_NAVN.get(r["udfald"], r["udfald"]).lower() for r in fr if r["verdict"] == "dårligere"]
        if bad:
            anb = ("Forsøget viser dårligere resultater på: " + ", ".join(bad) +
                   ". Det bør undersøges nærmere, før forsøget gøres permanent.")
        elif good:
            anb = ("Forsøget viser forbedringer på: " + ", ".join(good) +
                   " og ingen påviste forringelser. Det kan overvejes at gøre forsøget permanent.")
        else:
            anb = ("Forsøget præsterer på niveau med sammenligningskommunerne; der er ingen påviste "
                   "forringelser.")
        S.append(paragraphs(fill(texts["forsoeg_anbefalinger"], anbefaling=anb)))
        S.append(f"== {esc('Bilagsoversigt')}")
        S.append(paragraphs(texts["bilagsoversigt"]))
    # appendices
    S.append('#counter(heading).update(0)\n#set heading(numbering: "A.1")')
    S.append(f"= {esc('Metode')}")
    note = ("Bemærk: klynge-bootstrappen kan undervurdere usikkerheden, når kun få kommuner eller "
            "få forløb indgår i et forsøg; på simulerede data uden effekt gav den falske »bedre«. "
            "Randomiseringsinferens over kommuner (inferens = \"ri\") holder sit niveau og bør "
            "bruges til den endelige rapport."
            if opts.inferens == "bootstrap" else
            "Randomiseringsinferensen flytter forsøgets startdatoer tilfældigt mellem forsøgs- og "
            "sammenligningskommunerne og holder sit niveau også med få forsøgskommuner.")
    praetest = ("en permutationstest af gennemsnittet af effekterne før start, med de samme "
                "omfordelinger af startdatoerne som randomiseringsinferensen (en Wald-test holder "
                "ikke sit niveau med så få forsøgskommuner)" if opts.inferens == "ri" else
                "en Wald-test af effekterne før start (upålidelig med få forsøgskommuner: den "
                "afviser for ofte)")
    S.append(paragraphs(fill(texts["metode"], inferens=inferens, justering=just, inferens_note=note,
                             praetest=praetest,
                             alpha=gate.fact(opts.alpha, "significance level", fmt.tal, decimaler=2))))
    sens = analysis.sensitivity
    if len(sens):
        S.append(f"== {esc('Følsomhedsanalyser')}")
        S.append(paragraphs("Tabellen viser hovedestimatet og de samme effekter med den anden "
                            "periodelængde og med kun aldrig-behandlede kommuner som sammenligning "
                            "(95 %-intervaller med klyngerobuste standardfejl)."))
        recmap = {(r["forsoeg"], r["udfald"]): r for r in recs}

        def spec_label(x: str) -> str:
            return ("Kvartaler" if "kvartal" in x else "Halvår" if "halvaar" in x else
                    "Kun aldrig-behandlede" if "never" in x else "Også endnu ikke behandlede")

        labels = [spec_label(x) for x in sens.groupby(["forsoeg", "udfald"], sort=False).get_group(
                  tuple(sens.iloc[0][["forsoeg", "udfald"]]))["specifikation"]]
        srows = []
        for (fid, o), g in sens.groupby(["forsoeg", "udfald"], sort=False):
            r = recmap[(fid, o)]
            cells = [esc(fnavn[fid]), esc(UDFALD_NAVN.get(o, o)), esc(effect_text(gate, r, f"{fid}/{o}")[0])]
            for j, sr in enumerate(g.to_dict(orient="records")):
                alt = dict(r, estimate=sr["estimate"], ci_low=sr["ci_low"], ci_high=sr["ci_high"])
                e, ci = effect_text(gate, alt, f"{fid}/{o} {sr['specifikation']}")
                lab = spec_label(sr["specifikation"])   # a trial analysed with other options
                cells.append(esc(f"{e} {ci}" + (f" ({lab.lower()})" if j >= len(labels)
                                                 or lab != labels[j] else "")))
            srows.append(cells[:3 + len(labels)])
        S.append("#figure(kind: table, caption: [" + esc("Følsomhedsanalyser") + "])[\n" +
                 table(["Forsøg", "Udfald", "Hovedanalyse", *labels], srows,
                       widths="(1.3fr, 1.3fr, auto, 1.4fr, 1.4fr)", align="left") + "\n]")
    rr = rr_printable(analysis, rules)
    if len(rr) and rr["Mbar"].notna().any():
        S.append(f"== {esc('Robusthed over for brud på parallelle tendenser')}")
        S.append(paragraphs(fill(texts["rambachan_roth"], perioder=gate.fact(RR_E_POST + 1, "periods"))))
        recmap = {(r["forsoeg"], r["udfald"]): r for r in recs}
        rrows = []
        prev_rr = None
        for (fid, o), g in rr.groupby(["forsoeg", "udfald"], sort=False):
            r = recmap[(fid, o)]
            g = g.set_index(g["Mbar"].fillna(-1.0))
            cells = [esc(fnavn[fid]) if fid != prev_rr else "", esc(UDFALD_NAVN.get(o, o))]
            prev_rr = fid
            for mb in (-1.0, *[m for m in RR_MBAR if m > 0]):
                if mb in g.index:
                    row = g.loc[mb]
                    cells.append(esc(effect_text(gate, dict(r, ci_low=row["lb"], ci_high=row["ub"]),
                                                 f"{fid}/{o} RR {mb}")[1]))
                else:
                    cells.append(esc(fmt.MANGLER))
            bd = g["breakdown"].iloc[0]
            cells.append(esc(gate.num(bd, r["n_persons_exposed"], fmt.tal, decimaler=2,
                                      suppressed=bool(r["suppressed"]), what=f"{fid}/{o} breakdown")))
            rrows.append(cells)
        heads = ["Forsøg", "Udfald", "Uden brud"] + [
            "M̄ = " + gate.fact(m, "RR grid", fmt.tal, decimaler=1) for m in RR_MBAR if m > 0] + \
            ["Nedbrydningsværdi"]
        S.append("#figure(kind: table, caption: [" + esc("Rambachan–Roth: 95 %-intervaller for den "
                                                         "gennemsnitlige effekt, når tendenserne "
                                                         "efter start må afvige") + "])[\n" +
                 table(heads, rrows, widths="(1.4fr, 1.4fr, 1.1fr, 1.1fr, 1.1fr, 0.9fr)", align="left") +
                 "\n]")
    S.append(f"= {esc('Datakilder og definitioner')}")
    S.append(paragraphs(fill(texts["datakilder"], n_uger=gate.fact(cfg.n_uger, "job definition weeks"))))
    S.append(f"= {esc('Diskretionering')}")
    S.append(paragraphs(fill(texts["diskretionering"], k=gate.fact(rules.min_persons, "threshold"),
                             k_minus_1=gate.fact(rules.min_persons - 1, "threshold"))))
    S.append(f"= {esc('Kommuner efter kommunekode')}")
    from evaluering.reference import kommuner

    kom = kommuner().sort_values("kode")
    roles = []
    for r in kom.itertuples():
        tr = [f.id for f in forsoeg if r.kode in f.kommuner]
        ex = any(r.kode in f.udeluk_fra_kontrol for f in forsoeg)
        rolle = ("forsøg: " + ", ".join(tr)) if tr else ("udelukket fra sammenligning" if ex else "sammenligning")
        roles.append([esc(r.kode), esc(r.navn), esc(r.region), esc(rolle)])
    S.append(table(["Kode", "Kommune", "Region", "Rolle"], roles, widths="(auto, 1fr, 1fr, 1.4fr)"))
    if casestudie is not None:
        from evaluering.report.casestudie import typst_chapter

        S.extend(typst_chapter(casestudie, gate))
    return "\n\n".join(S) + "\n", gate
