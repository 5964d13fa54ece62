"""Foundation: package data, atomic writes, result objects, CLI exit codes."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from evaluering import _atomic
from evaluering.contract import normalise_kommune_kode, week_index, week_index_of_date, week_monday
from evaluering.reference import kommune_koder, kommuner
from evaluering.results import EstimateResult


def test_98_municipalities_with_regions():
    k = kommuner()
    assert len(k) == 98 and k["kode"].is_unique
    assert k.groupby("region").size().to_dict() == {
        "Region Hovedstaden": 29, "Region Midtjylland": 19, "Region Nordjylland": 11,
        "Region Sjælland": 17, "Region Syddanmark": 22}
    assert {"851", "825", "101", "461"} <= kommune_koder()


def test_kommune_kode_normalisation():
    assert normalise_kommune_kode("0851") == "851"
    assert normalise_kommune_kode(" 851 ") == "851"
    assert normalise_kommune_kode("85") is None
    assert normalise_kommune_kode("abc") is None


def test_week_index_iso_rules():
    import datetime as dt
    assert week_index(1990, 1) == 0
    # 2015 has an ISO week 53; 2016-W01 follows it
    assert week_index(2016, 1) - week_index(2015, 53) == 1
    assert week_index_of_date(dt.date(2017, 7, 1)) == week_index(2017, 26)  # a Saturday
    assert week_monday(week_index(2017, 27)) == dt.date(2017, 7, 3)


def test_atomic_write_leaves_target_on_failure(tmp_path):
    target = tmp_path / "t.json"
    _atomic.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with _atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_atomic_dir_keeps_previous_on_failure(tmp_path):
    target = tmp_path / "out"
    with _atomic.atomic_dir(target) as d:
        (d / "a.txt").write_text("v1")
    with pytest.raises(RuntimeError):
        with _atomic.atomic_dir(target) as d:
            (d / "a.txt").write_text("v2")
            raise RuntimeError("crash")
    assert (target / "a.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_result_object_is_immutable_and_serialises():
    comp = pd.DataFrame({"e": [-1, 0, 1], "att": [0.0, 1.0, np.nan], "se": [0.1, 0.2, 0.3]})
    r = EstimateResult("cs", 1.0, 0.5, (0.02, 1.98), 0.046, 100, 10, components={"event": comp})
    with pytest.raises(Exception):
        r.estimate = 2.0  # type: ignore[misc]
    comp.loc[0, "att"] = 99.0
    assert r.components["event"]["att"].iloc[0] == 0.0
    d = r.to_dict()
    assert d["components"]["event"][2]["att"] is None
    assert json.loads(json.dumps(d))["ci"] == [0.02, 1.98]
    assert list(r.summary().columns)[:3] == ["method", "estimate", "se"]


def test_cli_version_and_bad_usage_exit_codes():
    ok = subprocess.run([sys.executable, "-m", "evaluering", "version"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip()
    bad = subprocess.run([sys.executable, "-m", "evaluering", "no-such-command"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_atomic_outputs_follow_the_umask(tmp_path):
    import os
    old = os.umask(0o022)
    try:
        _atomic.write_text(tmp_path / "a.txt", "x")
        with _atomic.atomic_dir(tmp_path / "d") as d:
            (d / "b.txt").write_text("y")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
