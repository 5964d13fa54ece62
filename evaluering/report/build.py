"""``build_report``: registers (or a processed folder) + trial catalogue → a published report.

Steps: lock (``fcntl.flock`` on ``<out>.lock``, non-blocking) → hash of inputs + config +
version (unchanged and already published: nothing is rebuilt) → ingest and outcomes into a
private work folder (skipped when the data folder is already processed) → analysis
(:mod:`evaluering.report.analysis`) → tables (CSV), figures (SVG + PNG), ``resultater.json``,
Typst source and ``rapport.pdf`` (typst, fonts shipped in the package, PDF/UA-1, fixed
timestamp) and ``manifest.json``, all written into a temporary sibling folder that replaces
``<out>`` only when complete (:func:`evaluering._atomic.atomic_dir`). A line per step goes to
``<out>.log``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping


from evaluering.errors import EvalueringError, InputError
from evaluering.report.analysis import Analysis, AnalysisOptions, run_analysis
from evaluering.report.disclosure import DisclosureRules
from evaluering.report.notebook import NotebookSpec, notebook_specs

FONTS = Path(__file__).with_name("fonts")
TEMPLATES = Path(__file__).with_name("templates")
BUILD_VERSION = 1
log = logging.getLogger("evaluering.rapport")


class BuildLocked(EvalueringError):
    """Another build holds the lock of this output folder."""


@dataclass(frozen=True)
class ReportConfig:
    """Everything a report build depends on (see docs/report.md for the TOML form)."""

    data: Path                              # raw data-set folder or processed folder
    forsoeg: Path                           # trial catalogue (forsoeg.toml)
    out: Path                               # published report folder
    navn: str = "rapport"
    koder: Path | None = None               # ydelseskoder.toml if not in the data folder
    skabeloner: Path | None = None          # folder with a tekster.toml overriding templates
    behandlet: Path | None = None           # keep the processed tables here (default: temp)
    n_uger: int = 4                         # weeks without benefit that define a job
    min_persons: int = 5                    # disclosure threshold k (>= 3)
    casestudie_auk01: bool = True           # appendix: the AUK01 case study on public data
    analyse: AnalysisOptions = field(default_factory=AnalysisOptions)
    notebooks: tuple[NotebookSpec, ...] = ()  # trials analysed by a notebook (audit copy kept)

    def canonical(self) -> dict[str, Any]:
        """The config as it enters the build hash and the manifest (paths as given)."""
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()
             if k not in ("analyse", "notebooks")}
        d["analyse"] = asdict(self.analyse)
        if self.notebooks:      # absent when unused, so existing builds keep their hash
            d["notebooks"] = {s.forsoeg: s.canonical() for s in self.notebooks}
        return d


@dataclass(frozen=True)
class ReportResult:
    """What a build produced (paths, timings) or that nothing had to be rebuilt."""

    out: Path
    pdf: Path
    resultater: Path
    manifest: Path
    rebuilt: bool
    build_hash: str
    timings: Mapping[str, float] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    analysis: Any = field(default=None, repr=False, compare=False)  # the Analysis (when rebuilt)

    def __str__(self) -> str:  # used by `evaluering demo` when it prints outputs
        return str(self.out)


# --------------------------------------------------------------------------- config
def load_config(path: str | os.PathLike) -> ReportConfig:
    """Read ``evaluering.toml`` (see ``examples/evaluering.toml``); paths are relative to it."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("config file not found", file=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", file=str(path)) from exc
    base = path.parent
    r = raw.get("rapport", raw)

    def p(key: str, required: bool = False) -> Path | None:
        v = r.get(key)
        if v is None:
            if required:
                raise InputError(f"[rapport] needs '{key}'", file=str(path))
            return None
        q = Path(v)
        return q if q.is_absolute() else base / q

    navn = str(r.get("navn", "rapport"))
    out = p("out") or base / "reports" / navn
    known = {"navn", "data", "forsoeg", "koder", "out", "skabeloner", "behandlet", "n_uger",
             "min_personer", "casestudie_auk01"}
    unknown = sorted(set(r) - known - {"analyse", "notebooks"})
    if unknown:
        raise InputError(f"unknown key(s) in [rapport]: {', '.join(unknown)}", file=str(path))
    a = dict(raw.get("analyse", {}))
    try:
        analyse = AnalysisOptions(**a)
    except TypeError as exc:
        raise InputError(f"[analyse]: {exc}", file=str(path)) from exc
    k = int(r.get("min_personer", 5))
    if k < 3:
        raise InputError("min_personer must be at least 3", file=str(path))
    analyse = AnalysisOptions(**{**asdict(analyse), "min_persons": k})
    case = r.get("casestudie_auk01", True)
    if not isinstance(case, bool):
        raise InputError("casestudie_auk01 must be true or false", file=str(path))
    nbs = raw.get("notebooks", {})
    if not isinstance(nbs, dict):
        raise InputError("[notebooks] must hold one table per trial id", file=str(path))
    return ReportConfig(data=p("data", True), forsoeg=p("forsoeg", True), out=out, navn=navn,
                        koder=p("koder"), skabeloner=p("skabeloner"), behandlet=p("behandlet"),
                        n_uger=int(r.get("n_uger", 4)), min_persons=k,
                        casestudie_auk01=case, analyse=analyse,
                        notebooks=notebook_specs(nbs, base, str(path)))


# --------------------------------------------------------------------------- lock + hash
@contextlib.contextmanager
def build_lock(out: Path) -> Iterator[Path]:
    """Exclusive non-blocking lock on ``<out>.lock``; BuildLocked if another build holds it."""
    lock = out.parent / f"{out.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BuildLocked(f"another build of {out} is running (lock {lock} is held); "
                              "nothing was written") from exc
        yield lock
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_checksums(cfg: ReportConfig) -> dict[str, str]:
    """SHA-256 of every input file: the data folder (top level and karantaene excluded),
    the catalogue, the code mapping and the template folder."""
    out: dict[str, str] = {}
    data = Path(cfg.data)
    if not data.is_dir():
        raise InputError("data folder not found", file=str(data))
    for f in sorted(data.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            out[f"data/{f.name}"] = _sha256(f)
    for label, f in (("forsoeg", cfg.forsoeg), ("koder", cfg.koder)):
        if f is not None:
            if not Path(f).is_file():
                raise InputError("file not found", file=str(f))
            out[label] = _sha256(Path(f))
    if cfg.skabeloner is not None:
        for f in sorted(Path(cfg.skabeloner).glob("*")):
            if f.is_file():
                out[f"skabeloner/{f.name}"] = _sha256(f)
    for spec in cfg.notebooks:                                # trials analysed by a notebook
        if not Path(spec.notebook).is_file():
            raise InputError("notebook for a trial not found", file=str(spec.notebook))
        out[f"notebook/{spec.forsoeg}"] = _sha256(Path(spec.notebook))
    for f in sorted(TEMPLATES.glob("*")):
        out[f"pakke-skabeloner/{f.name}"] = _sha256(f)
    for f in sorted(Path(__file__).parent.glob("*.py")):     # the report code itself
        out[f"pakke-kode/{f.name}"] = _sha256(f)
    if cfg.casestudie_auk01:                                  # the AUK01 appendix: data + code
        from evaluering.casestudy import auk01 as _auk01
        from evaluering.report.casestudie import auk01_file

        out["casestudie/auk01"] = _sha256(auk01_file())
        out["pakke-kode/casestudy/auk01.py"] = _sha256(Path(_auk01.__file__))
    return out


def package_versions() -> dict[str, str]:
    from importlib import metadata

    import evaluering

    vers = {"evaluering": evaluering.__version__}
    for name in ("numpy", "pandas", "scipy", "duckdb", "pyarrow", "matplotlib", "typst"):
        try:
            vers[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            vers[name] = "unknown"
    return vers


def git_commit() -> str:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_hash(cfg: ReportConfig, checksums: Mapping[str, str]) -> str:
    payload = {"inputs": dict(checksums), "config": cfg.canonical(),
               "versions": package_versions(), "build_version": BUILD_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _published_hash(out: Path) -> str | None:
    m = out / "manifest.json"
    if not (m.is_file() and (out / "rapport.pdf").is_file()):
        return None
    try:
        return json.loads(m.read_text(encoding="utf-8")).get("build_hash")
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- data
def _is_processed(data: Path) -> bool:
    return (data / "forloeb.parquet").is_file() and (data / "manifest.json").is_file() \
        and (data / "karantaene").exists()


def prepare_data(cfg: ReportConfig, work: Path, say) -> tuple[Path, dict[str, Any]]:
    """The processed folder with outcome tables (ingest + outcomes when needed)."""
    from evaluering.outcomes import build_outcomes

    data = Path(cfg.data)
    info: dict[str, Any] = {}
    if _is_processed(data):
        processed = data
        info["kilde"] = "behandlet mappe"
        if not (data / "panel_kvartal.parquet").is_file():
            processed = work / "behandlet"
            shutil.copytree(data, processed)
            say("outcomes")
            build_outcomes(processed, forsoeg=cfg.forsoeg, n_weeks=cfg.n_uger)
    else:
        from evaluering.ingest import ingest

        processed = work / "behandlet"
        say("ingest")
        res = ingest(data, processed, koder=cfg.koder, progress=lambda m: log.info(m))
        info["kilde"] = "registre"
        info["ingest"] = {k: {kk: v[kk] for kk in ("rows_read", "rows_accepted", "rows_quarantined")}
                          for k, v in res.manifest["registers"].items()}
        say("outcomes")
        build_outcomes(processed, forsoeg=cfg.forsoeg, n_weeks=cfg.n_uger)
    return processed, info


# --------------------------------------------------------------------------- build
def build_report(config: ReportConfig, *, force: bool = False, progress=None) -> ReportResult:
    """Build and atomically publish the report described by ``config`` (see module docstring).

    Returns a :class:`ReportResult` (``rebuilt=False`` when the published report already
    matches the inputs and config). Raises :class:`BuildLocked` if another build of the same
    output runs, :class:`~evaluering.errors.DisclosureError` if a number would print
    unsuppressed, :class:`~evaluering.errors.InputError` for bad input; the previously
    published report is left intact in every failure.
    """
    from evaluering.reference.catalogue import load_forsoeg

    cfg = config
    out = Path(cfg.out)
    logfile = out.parent / f"{out.name}.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    say_ext = progress or (lambda m: None)

    def say(msg: str) -> None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(logfile, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {msg}\n")
        say_ext(msg)

    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    with build_lock(out):
        try:
            sums = input_checksums(cfg)
            h = build_hash(cfg, sums)
            if not force and _published_hash(out) == h:
                say(f"uændret: {out} matcher input og konfiguration (hash {h[:12]}); intet bygget")
                return ReportResult(out=out, pdf=out / "rapport.pdf",
                                    resultater=out / "resultater.json",
                                    manifest=out / "manifest.json", rebuilt=False, build_hash=h)
            say(f"bygger {out} (hash {h[:12]})")
            forsoeg = load_forsoeg(cfg.forsoeg)
            work_ctx = (contextlib.nullcontext(Path(cfg.behandlet)) if cfg.behandlet is not None
                        else tempfile.TemporaryDirectory(prefix="evaluering-rapport-"))
            with work_ctx as wd:
                work = Path(wd)
                work.mkdir(parents=True, exist_ok=True)
                t0 = time.perf_counter()
                processed, data_info = prepare_data(cfg, work, say)
                timings["data"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                trial_analyses, audits = run_notebooks(cfg, forsoeg, processed, work, say)
                if cfg.notebooks:
                    timings["notesboeger"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                say("analyse")
                analysis = run_analysis(processed, forsoeg, cfg.analyse, progress=say,
                                        trial_analyses=trial_analyses)
                analysis = dataclasses.replace(
                    analysis, notebooks={k: v["info"] for k, v in audits.items()})
                timings["analyse"] = time.perf_counter() - t0
                with atomic_dir_files(out) as tmp:
                    files = write_outputs(tmp, cfg, forsoeg, analysis, processed, timings, say)
                    nb_manifest = write_audits(tmp, audits, files)
                    timings["i_alt"] = time.perf_counter() - t_all
                    manifest = {
                        "build_hash": h, "build_version": BUILD_VERSION,
                        "inputs": sums, "config": cfg.canonical(), "data": data_info,
                        "versions": package_versions(), "git_commit": git_commit(),
                        "timings_s": {k: round(v, 3) for k, v in timings.items()},
                        "disclosure": files.pop("_disclosure"),
                        "casestudie_auk01": files.pop("_casestudie"),
                        **({"notesboeger": nb_manifest} if nb_manifest else {}),
                        "files": sorted(str(p.relative_to(tmp)) for p in files.values()),
                    }
                    from evaluering._atomic import write_json

                    write_json(tmp / "manifest.json", manifest)
        except Exception as exc:
            say(f"FEJL: {type(exc).__name__}: {exc}; den tidligere rapport er uændret")
            raise
    say(f"færdig: {out} ({timings['i_alt']:.1f} s)")
    return ReportResult(out=out, pdf=out / "rapport.pdf", resultater=out / "resultater.json",
                        manifest=out / "manifest.json", rebuilt=True, build_hash=h,
                        timings=dict(timings),
                        files=tuple(sorted(out / str(p.relative_to(tmp)) for p in files.values())),
                        analysis=analysis)


def run_notebooks(cfg: ReportConfig, forsoeg, processed: Path, work: Path, say):
    """Run the trials' notebooks (config ``[notebooks]``): trial analyses and audit copies."""
    from evaluering.report.notebook import run_trial_notebook

    ids = {f.id for f in forsoeg}
    analyses: dict[str, Any] = {}
    audits: dict[str, Any] = {}
    for spec in cfg.notebooks:
        if spec.forsoeg not in ids:
            raise InputError(f"[notebooks.{spec.forsoeg}]: no such trial in the catalogue",
                             file=str(cfg.forsoeg), expected="one of " + ", ".join(sorted(ids)))
        say(f"notesbog {Path(spec.notebook).name} for {spec.forsoeg}")
        private = [str(work)] if cfg.behandlet is None else []
        ta, nb, info = run_trial_notebook(spec, processed=processed, forsoeg_fil=Path(cfg.forsoeg),
                                          options=cfg.analyse, work=work, private_paths=private)
        analyses[spec.forsoeg] = ta
        audits[spec.forsoeg] = {"nb": nb, "info": {**info, "revisionsfil": audit_name(spec.forsoeg)}}
        say(f"  {spec.forsoeg}: {info['output_bevaret']} output bevaret, "
            f"{info['output_fjernet']} fjernet, {info['figurer_fjernet']} figurer fjernet")
    return analyses, audits


def audit_name(forsoeg_id: str) -> str:
    """File name of a trial's audit notebook beside the PDF."""
    return f"analyse-{forsoeg_id}.ipynb"


def write_audits(tmp: Path, audits: Mapping[str, Any], files: dict[str, Any]) -> dict[str, Any]:
    """Write the audit notebooks beside the PDF; their manifest entries."""
    from evaluering.report.notebook import write_audit

    out = {}
    for fid, a in sorted(audits.items()):
        path = tmp / a["info"]["revisionsfil"]
        sha = write_audit(a["nb"], path)
        files[f"notebook:{fid}"] = path
        out[fid] = {**a["info"], "sha256_revisionsfil": sha}
    return out


@contextlib.contextmanager
def atomic_dir_files(out: Path):
    """:func:`evaluering._atomic.atomic_dir` (kept as a seam for tests)."""
    from evaluering._atomic import atomic_dir

    with atomic_dir(out) as tmp:
        yield tmp


def write_outputs(tmp: Path, cfg: ReportConfig, forsoeg, analysis: Analysis, processed: Path,
                  timings: dict[str, float], say) -> dict[str, Any]:
    """Write every output into ``tmp`` (the not yet published folder)."""
    from evaluering.report import document

    rules = DisclosureRules(cfg.min_persons)
    t0 = time.perf_counter()
    say("tabeller og resultater.json")
    files = document.write_tables(tmp, analysis, forsoeg, rules)
    timings["tabeller"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("figurer")
    figs = document.write_figures(tmp, analysis, forsoeg, rules)
    files.update({f"fig:{k}:{e}": p for k, v in figs.items() for e, p in v["paths"].items()})
    timings["figurer"] = time.perf_counter() - t0
    case = None
    if cfg.casestudie_auk01:
        from evaluering.report.casestudie import chapter_for_report

        t1 = time.perf_counter()
        say("casestudie AUK01")
        case = chapter_for_report(tmp / "figurer", rules)
        files.update({f"fig:{k}:{e}": p for k, v in case["figs"].items()
                      for e, p in v["paths"].items()})
        timings["casestudie_auk01"] = time.perf_counter() - t1
    t0 = time.perf_counter()
    say("typst-kilde")
    texts = document.load_texts(cfg.skabeloner)
    src, gate = document.typst_source(analysis, forsoeg, rules, texts, figs, cfg, casestudie=case)
    from evaluering._atomic import write_bytes, write_text

    write_text(tmp / "rapport.typ", src)
    files["typ"] = tmp / "rapport.typ"
    say("pdf")
    pdf = compile_pdf(tmp, "rapport.typ")
    write_bytes(tmp / "rapport.pdf", pdf)
    files["pdf"] = tmp / "rapport.pdf"
    timings["pdf"] = time.perf_counter() - t0
    files["_disclosure"] = {
        "min_persons": rules.min_persons,
        "tal_trykt": gate.printed, "tal_undertrykt": gate.suppressed,
        "ikke_personbaserede_tal": gate.facts,
        **document.LAST_SUPPRESSION,
    }
    files["_casestudie"] = case["manifest"] if case is not None else {"medtaget": False}
    return files


def compile_pdf(root: Path, name: str, fmt: str = "pdf", ppi: float | None = None):
    """Compile ``root/name`` with typst (shipped fonts only, PDF/UA-1, fixed timestamp)."""
    import typst

    kw: dict[str, Any] = dict(root=str(root), font_paths=[str(FONTS)], ignore_system_fonts=True)
    if fmt == "pdf":
        return typst.compile(str(root / name), pdf_standards=["ua-1"], timestamp=0, **kw)
    return typst.compile(str(root / name), format=fmt, ppi=ppi or 60, **kw)


def build_report_from_cli(data_dir, forsoeg, *, out=None, koder=None, navn: str | None = None,
                          notebooks: tuple[NotebookSpec, ...] = (), progress=None,
                          **analyse) -> ReportResult:
    """Convenience for ``evaluering rapport DATA_DIR --forsoeg …`` and ``evaluering demo``."""
    data_dir = Path(data_dir)
    navn = navn or data_dir.name
    out = Path(out) if out is not None else Path("reports") / navn
    cfg = ReportConfig(data=data_dir, forsoeg=Path(forsoeg), out=out, navn=navn,
                       koder=Path(koder) if koder else None,
                       analyse=AnalysisOptions(**analyse), notebooks=tuple(notebooks))
    return build_report(cfg, progress=progress)


def parse_notebook_option(values) -> tuple[NotebookSpec, ...]:
    """``--notebook TRIAL=PATH`` (repeatable) → specs; InputError on a malformed value."""
    out = []
    for v in values or ():
        trial, sep, path = str(v).partition("=")
        if not sep or not trial.strip() or not path.strip():
            raise InputError(f"--notebook {v!r}", expected="TRIAL=PATH, e.g. "
                             "samtaler-forsikrede=notebooks/05_forsoegsanalyse.ipynb")
        out.append(NotebookSpec(trial.strip(), Path(path.strip())))
    return tuple(out)
