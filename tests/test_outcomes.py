"""Outcome rules on hand-built registers with known answers (time to job, resources, exposure)."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from evaluering import contract
from evaluering.errors import InputError
from evaluering.outcomes import build_outcomes
from evaluering.outcomes import sql as osql
from test_outcomes_helpers import D, FakeForsoeg, spell, weeks, write_canonical

wk = contract.week_index_of_date
S = wk(D(2018, 1, 8))          # a Monday: 2018-W02
F, L = S - 20, S + 120          # observed range of the weekly register


def _build(tmp_path, forloeb, ugestatus=None, personer=None, kontakter=None, **kw):
    write_canonical(tmp_path / "p", forloeb, kontakter=kontakter, ugestatus=ugestatus,
                    personer=personer, week_range=(F, L) if ugestatus is not None else None)
    r = build_outcomes(tmp_path / "p", **kw)
    ttj = pd.read_parquet(r.files["tid_til_job"]).set_index("spell_id")
    return r, ttj


def _start(week: int, weekday: int = 0) -> dt.date:
    return contract.week_monday(week) + dt.timedelta(days=weekday)


# --------------------------------------------------------------------------- week arithmetic
def test_sql_week_index_equals_contract_for_every_day_2014_2022():
    days = pd.date_range("2014-01-01", "2022-12-31", freq="D").date
    con = duckdb.connect()
    con.register("d", pd.DataFrame({"d": days}))
    got = con.execute(f"SELECT {osql.week_of('d')} AS w FROM d").df()["w"].to_numpy()
    expected = np.array([contract.week_index_of_date(x) for x in days])
    assert (got == expected).all()
    # ISO week 53 of 2020 directly follows week 52 and precedes 2021-W01
    assert contract.week_index(2020, 53) == contract.week_index(2020, 52) + 1
    assert contract.week_index(2021, 1) == contract.week_index(2020, 53) + 1


# --------------------------------------------------------------------------- time to job
def test_run_interrupted_after_three_weeks_is_not_a_job(tmp_path):
    # benefit S..S+4, free S+5..S+7 (3 weeks), benefit S+8..S+9, free from S+10
    u = weeks("a", S, S + 4) + weeks("a", S + 8, S + 9)
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S, 2))], u)
    assert t.loc[1, "status"] == "job"
    assert t.loc[1, "varighed_uger"] == 10
    assert t.loc[1, "tid_til_job_kilde"] == "ugestatus"


def test_n_weeks_is_configurable(tmp_path):
    u = weeks("a", S, S + 4) + weeks("a", S + 8, S + 9)
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S))], u, n_weeks=3)
    assert t.loc[1, "varighed_uger"] == 5           # the 3-week run now counts
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S))], u, n_weeks=8)
    assert t.loc[1, "varighed_uger"] == 10


def test_run_starting_the_week_after_start(tmp_path):
    u = weeks("a", S, S)
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S, 4))], u)
    assert (t.loc[1, "status"], t.loc[1, "varighed_uger"]) == ("job", 1)
    assert (t.loc[1, "job_13_uger"], t.loc[1, "job_26_uger"], t.loc[1, "job_52_uger"]) == (1, 1, 1)
    assert t.loc[1, "rmst_52_uger"] == 1.0


def test_censored_by_data_end_when_run_cannot_be_confirmed(tmp_path):
    # benefit until L-2, free L-1 and L: only 2 observed free weeks, N=4 -> not confirmed
    u = weeks("a", S, L - 2)
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S))], u)
    row = t.loc[1]
    assert row["status"] == "censureret" and row["censur_aarsag"] == "data_slut"
    assert row["varighed_uger"] == (L - 4 + 1) - S   # last week a run could still be confirmed
    assert (row["job_13_uger"], row["job_26_uger"], row["job_52_uger"]) == (0, 0, 0)
    assert row["rmst_52_uger"] == 52.0
    # a run of exactly N weeks ending at the last observed week is confirmed
    u = weeks("a", S, L - 4)
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S))], u)
    assert (t.loc[1, "status"], t.loc[1, "varighed_uger"]) == ("job", L - 3 - S)


def test_censored_by_emigration_and_pension(tmp_path):
    u = (weeks("a", S, S + 5) + weeks("a", S + 6, S + 30, "doed_udvandret")
         + weeks("b", S, S + 2) + weeks("b", S + 3, L, "pension"))
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S)),
                             spell(2, "b", "851", "sygedagpenge", _start(S))], u)
    assert (t.loc[1, "status"], t.loc[1, "censur_aarsag"], t.loc[1, "varighed_uger"]) == \
        ("censureret", "doed_udvandret", 6)
    assert pd.isna(t.loc[1, "job_13_uger"]) and pd.isna(t.loc[1, "rmst_52_uger"])
    assert (t.loc[2, "censur_aarsag"], t.loc[2, "varighed_uger"]) == ("pension", 3)


def test_censored_by_window_end(tmp_path):
    e = S + 30                      # window ends in week e; free from week e-1 on
    u = weeks("a", S, e - 2)
    window = contract.week_monday(e) + dt.timedelta(days=3)
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S))], u, window_end=window)
    assert (t.loc[1, "status"], t.loc[1, "censur_aarsag"]) == ("censureret", "vindue_slut")
    assert t.loc[1, "varighed_uger"] == e - 4 + 1 - S
    # without the window the same person is in job from week e-1
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S))], u)
    assert (t.loc[1, "status"], t.loc[1, "varighed_uger"]) == ("job", e - 1 - S)


def test_window_end_defaults_to_latest_trial_end(tmp_path):
    e = S + 30
    u = weeks("a", S, e - 2)
    f = FakeForsoeg("t1", "T", "O", ("a-dagpenge",), D(2017, 1, 1),
                    contract.week_monday(e) + dt.timedelta(days=3), ("851",))
    r, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S))], u, forsoeg=[f])
    assert t.loc[1, "censur_aarsag"] == "vindue_slut"
    assert r.manifest["parametre"]["vindue_slut"] == f.slut


def test_exit_to_su_is_competing(tmp_path):
    u = weeks("a", S, S + 3) + weeks("a", S + 4, S + 40, "su")
    _, t = _build(tmp_path, [spell(1, "a", "851", "uddannelseshjaelp", _start(S))], u)
    assert (t.loc[1, "status"], t.loc[1, "varighed_uger"]) == ("uddannelse", 4)
    assert pd.isna(t.loc[1, "censur_aarsag"])
    assert (t.loc[1, "job_13_uger"], t.loc[1, "job_52_uger"]) == (0, 0)


def test_person_absent_from_weekly_register_and_person_without_rows(tmp_path):
    u = weeks("a", S, S + 2)
    # 'b' has no rows but is in the register: self-supporting from the start week
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S)),
                             spell(2, "b", "851", "a-dagpenge", _start(S)),
                             spell(3, "c", "851", "a-dagpenge", _start(S))],
                  u, personer=["a", "b"])
    assert (t.loc[1, "status"], t.loc[1, "varighed_uger"]) == ("job", 3)
    assert (t.loc[2, "status"], t.loc[2, "varighed_uger"]) == ("job", 0)
    assert t.loc[3, "status"] == "censureret"
    assert t.loc[3, "censur_aarsag"] == "ikke_i_ugeregister"
    assert pd.isna(t.loc[3, "varighed_uger"]) and pd.isna(t.loc[3, "job_52_uger"])


def test_spell_before_observed_range_and_after_it(tmp_path):
    # starts 5 weeks before the register's first week; benefit F..F+2, free from F+3
    u = weeks("a", F, F + 2)
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(F - 5)),
                             spell(2, "a", "101", "a-dagpenge", _start(L - 1))], u)
    assert (t.loc[1, "status"], t.loc[1, "varighed_uger"]) == ("job", 8)
    assert t.loc[2, "censur_aarsag"] == "ingen_opfoelgning" and pd.isna(t.loc[2, "varighed_uger"])


def test_iso_week_53(tmp_path):
    w52, w53 = contract.week_index(2020, 52), contract.week_index(2020, 53)
    u = weeks("a", w52, w53) + weeks("b", w52, w52)
    write_canonical(tmp_path / "p", [spell(1, "a", "851", "a-dagpenge", D(2020, 12, 23)),
                                     spell(2, "b", "851", "a-dagpenge", D(2020, 12, 23))],
                    ugestatus=u, week_range=(w52 - 10, w52 + 60))
    t = pd.read_parquet(build_outcomes(tmp_path / "p").files["tid_til_job"]).set_index("spell_id")
    assert t.loc[1, "start_uge"] == w52
    assert (t.loc[1, "status"], t.loc[1, "varighed_uger"]) == ("job", 2)   # job from 2021-W01
    assert (t.loc[2, "status"], t.loc[2, "varighed_uger"]) == ("job", 1)   # run W53, W01..W03


def test_derived_indicators_and_rmst_follow_follow_up(tmp_path):
    u = (weeks("a", S, S + 12) + weeks("b", S, S + 13) + weeks("c", S, S + 59)
         + weeks("d", S, S + 19) + weeks("d", S + 20, L, "pension"))
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(S)),
                             spell(2, "b", "851", "a-dagpenge", _start(S)),
                             spell(3, "c", "851", "a-dagpenge", _start(S)),
                             spell(4, "d", "851", "a-dagpenge", _start(S))], u)
    assert t.loc[1, "varighed_uger"] == 13 and t.loc[1, "job_13_uger"] == 1   # within 13 weeks
    assert t.loc[2, "varighed_uger"] == 14 and t.loc[2, "job_13_uger"] == 0
    assert t.loc[2, "job_26_uger"] == 1
    assert (t.loc[3, "job_52_uger"], t.loc[3, "rmst_52_uger"]) == (0, 52.0)
    assert t.loc[4, "varighed_uger"] == 20
    assert (t.loc[4, "job_13_uger"], t.loc[4, "job_26_uger"]) == (0, None) or \
        (t.loc[4, "job_13_uger"] == 0 and pd.isna(t.loc[4, "job_26_uger"]))
    assert pd.isna(t.loc[4, "rmst_52_uger"])


def test_fallback_to_spell_register_without_weekly_register(tmp_path):
    s0 = D(2018, 1, 8)
    f = [spell(1, "a", "851", "a-dagpenge", s0, D(2018, 3, 7), "job"),
         spell(2, "b", "851", "a-dagpenge", s0, D(2018, 2, 1), "anden_ydelse"),
         spell(3, "c", "851", "a-dagpenge", s0, D(2018, 2, 1), "uddannelse"),
         spell(4, "d", "851", "a-dagpenge", s0),
         spell(5, "e", "851", "a-dagpenge", s0, D(2018, 12, 31), "job")]
    r, t = _build(tmp_path, f)
    assert r.manifest["tid_til_job_kilde"] == "forloeb"
    assert set(t["tid_til_job_kilde"]) == {"forloeb"}
    assert (t.loc[1, "status"], t.loc[1, "varighed_uger"]) == ("job", wk(D(2018, 3, 7)) - wk(s0))
    assert (t.loc[2, "status"], t.loc[2, "censur_aarsag"]) == ("censureret", "afgang_anden_ydelse")
    assert t.loc[3, "status"] == "uddannelse"
    # open spell: censored at the data end (the latest date in the registers, 2018-12-31)
    assert (t.loc[4, "censur_aarsag"], t.loc[4, "varighed_uger"]) == \
        ("data_slut", wk(D(2018, 12, 31)) - wk(s0))
    assert t.loc[5, "status"] == "job"


def test_missing_spell_table_is_input_error(tmp_path):
    (tmp_path / "p").mkdir()
    with pytest.raises(InputError):
        build_outcomes(tmp_path / "p")


# --------------------------------------------------------------------------- resources
def _contact(cid, pid, dato, typ="samtale", kanal="fysisk", kommune="851", attest=None,
             minutter=None, udgift=None):
    return dict(contact_id=cid, person_id=pid, kommune_kode=kommune, dato=dato, type=typ,
                kanal=kanal if typ == "samtale" else None, attest=attest, minutter=minutter,
                udgift_kr=udgift)


def test_resources_windows_channels_forms_and_money(tmp_path):
    s0 = D(2018, 1, 8)
    f = [spell(1, "a", "851", "sygedagpenge", s0, D(2018, 12, 1), "job"),
         spell(2, "b", "851", "sygedagpenge", s0, D(2018, 3, 1), "job"),
         spell(3, "c", "851", "sygedagpenge", s0, D(2018, 2, 1), "job")]
    k = [_contact(1, "a", s0, "samtale", "fysisk", minutter=30.0),
         _contact(2, "a", s0 + dt.timedelta(days=181), "samtale", "telefon", minutter=20.0),
         _contact(3, "a", s0 + dt.timedelta(days=182), "samtale", "fysisk", minutter=45.0),
         _contact(4, "a", s0 + dt.timedelta(days=10), "laegeattest", attest="LÆ 285", udgift=750.0),
         _contact(5, "a", s0 + dt.timedelta(days=11), "laegeattest", attest="lae-265"),
         _contact(6, "a", s0 + dt.timedelta(days=12), "rehabiliteringsteam"),
         _contact(7, "a", s0 + dt.timedelta(days=13), "tilbud"),
         _contact(8, "a", s0 + dt.timedelta(days=14), "samtale", None),
         _contact(9, "b", s0 + dt.timedelta(days=3), "laegeattest", attest="LAE125")]
    r, _ = _build(tmp_path, f, kontakter=k)
    res = pd.read_parquet(r.files["ressourcer"]).set_index("spell_id")
    a = res.loc[1]
    assert a["samtaler_pr_forloeb"] == 3 and a["samtaler_hele"] == 4        # day 182 is outside
    assert (a["samtaler_fysisk_26"], a["samtaler_telefon_26"], a["samtaler_ukendt_kanal_26"]) == (1, 1, 1)
    assert a["andel_fysiske_samtaler"] == pytest.approx(0.5)             # known channels only
    assert a["minutter_pr_forloeb"] == 50.0 and a["minutter_hele"] == 95.0
    assert a["laegeattester_pr_forloeb"] == 2
    assert (a["laegeattester_lae285_26"], a["laegeattester_lae265_26"]) == (1, 1)
    assert a["rehab_pr_forloeb"] == 1 and a["tilbud_26"] == 1
    assert a["udgift_pr_forloeb"] == 750.0
    b = res.loc[2]
    assert b["laegeattester_lae125_26"] == 1 and pd.isna(b["andel_fysiske_samtaler"])
    assert b["minutter_pr_forloeb"] == 0.0 and b["kontakter_med_minutter_26"] == 0  # not recorded
    assert a["kontakter_med_minutter_26"] == 2 and a["kontakter_med_udgift_26"] == 1
    c = res.loc[3]
    assert c["samtaler_pr_forloeb"] == 0 and c["minutter_pr_forloeb"] == 0.0  # no contacts
    assert pd.isna(c["andel_fysiske_samtaler"])
    assert a["aar_paa_ydelse"] == pytest.approx(((D(2018, 12, 1) - s0).days + 1) / 365.25)


def test_first_26_weeks_null_without_full_follow_up(tmp_path):
    s0 = D(2018, 1, 8)
    f = [spell(1, "a", "851", "a-dagpenge", s0),                      # open, long observed
         spell(2, "b", "851", "a-dagpenge", D(2018, 11, 1)),          # open, 60 days observed
         spell(3, "c", "851", "a-dagpenge", D(2018, 11, 1), D(2018, 11, 20), "job"),
         spell(4, "d", "851", "a-dagpenge", s0, D(2018, 12, 31), "job")]
    k = [_contact(1, "b", D(2018, 11, 5)), _contact(2, "c", D(2018, 11, 5))]
    r, _ = _build(tmp_path, f, kontakter=k)
    res = pd.read_parquet(r.files["ressourcer"]).set_index("spell_id")
    assert list(res["fuld_opfoelgning_26"]) == [True, False, True, True]
    assert pd.isna(res.loc[2, "samtaler_pr_forloeb"]) and res.loc[2, "samtaler_hele"] == 1
    assert res.loc[3, "samtaler_pr_forloeb"] == 1


def test_overlapping_spells_target_group_first_then_documented_tie_break(tmp_path):
    s0 = D(2018, 1, 8)
    f = [spell(1, "a", "851", "a-dagpenge", s0, D(2018, 6, 1), "anden_ydelse"),
         spell(2, "a", "851", "sygedagpenge", D(2018, 2, 1), D(2018, 4, 1), "job"),
         spell(3, "b", "101", "kontanthjaelp", s0, D(2018, 6, 1), "job"),
         spell(4, "b", "851", "uddannelseshjaelp", s0, D(2018, 6, 1), "job")]
    k = [_contact(1, "a", D(2018, 3, 1)), _contact(2, "a", D(2018, 5, 1)),
         _contact(3, "b", D(2018, 3, 1), kommune="851"), _contact(4, "z", D(2018, 3, 1)),
         _contact(5, "a", D(2017, 3, 1))]
    # without a catalogue: the latest-starting open spell wins (spell 2 on 2018-03-01)
    r, _ = _build(tmp_path, f, kontakter=k)
    res = pd.read_parquet(r.files["ressourcer"]).set_index("spell_id")
    assert res["samtaler_hele"].to_dict() == {1: 1, 2: 1, 3: 0, 4: 1}  # contact 3 -> same kommune
    # with a trial targeting a-dagpenge: the a-dagpenge spell is preferred
    t = FakeForsoeg("t1", "T", "O", ("a-dagpenge",), D(2018, 1, 1), D(2019, 12, 31), ("851",))
    r, _ = _build(tmp_path, f, kontakter=k, forsoeg=[t])
    res = pd.read_parquet(r.files["ressourcer"]).set_index("spell_id")
    assert res["samtaler_hele"].to_dict() == {1: 2, 2: 0, 3: 0, 4: 1}
    # contacts outside any spell are tallied, not lost
    out = pd.read_parquet(r.files["kontakter_uden_forloeb"])
    assert out["n_kontakter"].sum() == 2
    assert r.manifest["kontakter"] == {"i_alt": 5, "i_forloeb": 3, "uden_forloeb": 2}


def test_person_who_moves_municipality(tmp_path):
    # spell in 851, then a new spell in 101 after moving; contacts follow the open spell
    f = [spell(1, "a", "851", "a-dagpenge", D(2018, 1, 8), D(2018, 3, 2), "anden_ydelse"),
         spell(2, "a", "101", "a-dagpenge", D(2018, 3, 5), D(2018, 9, 3), "job")]
    u = weeks("a", wk(D(2018, 1, 8)), wk(D(2018, 9, 3)))
    k = [_contact(1, "a", D(2018, 2, 1), kommune="851"), _contact(2, "a", D(2018, 4, 1), kommune="101"),
         _contact(3, "a", D(2018, 3, 3), kommune="851")]
    r, t = _build(tmp_path, f, ugestatus=u, kontakter=k)
    res = pd.read_parquet(r.files["ressourcer"]).set_index("spell_id")
    assert res["samtaler_hele"].to_dict() == {1: 1, 2: 1}
    assert r.manifest["kontakter"]["uden_forloeb"] == 1      # the Saturday between the spells
    assert list(t["kommune_kode"]) == ["851", "101"]
    # time to job is measured from each spell's own start
    end = wk(D(2018, 9, 3)) + 1
    assert t.loc[1, "varighed_uger"] == end - wk(D(2018, 1, 8))
    assert t.loc[2, "varighed_uger"] == end - wk(D(2018, 3, 5))


# --------------------------------------------------------------------------- exposure
def test_exposure_cohorts_roles_and_periods(tmp_path):
    tr = FakeForsoeg("samtaler", "T", "O", ("a-dagpenge",), D(2018, 1, 1), D(2019, 12, 31),
                     ("851", "860"), udeluk_fra_kontrol=("201",),
                     start_pr_kommune={"860": D(2018, 3, 1)})
    f = [spell(1, "a", "851", "a-dagpenge", D(2017, 12, 31)),
         spell(2, "b", "851", "a-dagpenge", D(2018, 1, 1)),
         spell(3, "c", "860", "a-dagpenge", D(2018, 2, 1)),
         spell(4, "d", "860", "a-dagpenge", D(2018, 3, 1)),
         spell(5, "e", "201", "a-dagpenge", D(2018, 3, 1)),
         spell(6, "f", "101", "a-dagpenge", D(2018, 5, 1)),
         spell(7, "g", "851", "kontanthjaelp", D(2018, 5, 1)),
         spell(8, "h", "851", "a-dagpenge", D(2020, 5, 1))]
    r, t = _build(tmp_path, f, forsoeg=[tr])
    e = pd.read_parquet(r.files["eksponering"]).set_index("spell_id")
    assert 7 not in e.index                                   # not in the target group
    assert e["eksponeret"].to_dict() == {1: False, 2: True, 3: False, 4: True, 5: False,
                                         6: False, 8: True}
    assert e["rolle"].to_dict() == {1: "behandlet", 2: "behandlet", 3: "behandlet", 4: "behandlet",
                                    5: "udelukket", 6: "kontrol", 8: "behandlet"}
    assert e.loc[3, "kohorte_dato"] == D(2018, 3, 1) and pd.isna(e.loc[6, "kohorte_dato"])
    assert e.loc[3, "kohorte_kvartal_nr"] == 2018 * 4 + 0 and e.loc[3, "kohorte_maaned_nr"] == 2018 * 12 + 2
    assert e.loc[8, "i_vindue"] == False  # noqa: E712 - starts after the trial's end
    assert (e.loc[1, "start_maaned"], e.loc[1, "start_kvartal"]) == ("2017-12", "2017-Q4")
    assert t["forsoeg_eksponeret"].to_dict() == {1: "", 2: "samtaler", 3: "", 4: "samtaler", 5: "",
                                                  6: "", 7: "", 8: "samtaler"}


def test_outputs_have_no_person_ids_outside_processed_spell_tables(tmp_path):
    f = [spell(1, "a", "851", "a-dagpenge", D(2018, 1, 8))]
    r, _ = _build(tmp_path, f, kontakter=[_contact(1, "zz", D(2018, 1, 1))])
    for name in ("panel_kvartal", "panel_maaned", "overlevelse", "kontakter_uden_forloeb", "eksponering"):
        assert "person_id" not in pd.read_parquet(r.files[name]).columns
    text = json.dumps(r.manifest, default=str)
    assert "zz" not in text


def test_indicators_need_full_potential_follow_up_even_after_an_early_job(tmp_path):
    # starts 10 weeks before the data end: a job at week 1 is observed, but job_13_uger
    # would only be defined for the fast exits of late cohorts -> NULL (no selection bias)
    s = L - 10
    u = weeks("a", s, s)
    _, t = _build(tmp_path, [spell(1, "a", "851", "a-dagpenge", _start(s))], u)
    assert (t.loc[1, "status"], t.loc[1, "varighed_uger"]) == ("job", 1)
    assert t.loc[1, "opfoelgning_uger"] == L - 3 - s
    assert pd.isna(t.loc[1, "job_13_uger"]) and pd.isna(t.loc[1, "rmst_52_uger"])


def test_cli_outcomes_writes_tables_and_bad_input_exits_2(tmp_path, capsys):
    from evaluering.cli import main

    write_canonical(tmp_path / "p", [spell(1, "a", "851", "a-dagpenge", _start(S))],
                    ugestatus=weeks("a", S, S + 2), week_range=(F, L))
    assert main(["outcomes", str(tmp_path / "p"), "--n-uger", "2", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "tid_til_job\t1" in out and "tid_til_job_kilde\tugestatus" in out
    m = json.loads((tmp_path / "o" / "outcomes_manifest.json").read_text())
    assert m["n_uger_selvforsoergelse"] == 2
    t = pd.read_parquet(tmp_path / "o" / "tid_til_job.parquet")
    assert t["varighed_uger"].tolist() == [3]
    assert main(["outcomes", str(tmp_path / "nothing")]) == 2
    assert main(["outcomes", str(tmp_path / "p"), "--engine", "nosuch"]) == 2
    assert main(["outcomes", str(tmp_path / "p"), "--vindue-slut", "31-12-2019"]) == 2


def test_exposure_equals_catalogue_method_with_the_shipped_catalogue(tmp_path):
    """Exposure from SQL equals Forsoeg.eksponeret() of the real catalogue loader."""
    from evaluering.reference.catalogue import forsoeg_nordjylland_path, load_forsoeg
    from test_outcomes_helpers import random_registers

    random_registers(tmp_path / "p", n_persons=250, seed=5,
                     kommuner=("851", "860", "810", "101", "201", "461"),
                     grupper=("a-dagpenge", "sygedagpenge", "jobafklaring", "kontanthjaelp"))
    path = forsoeg_nordjylland_path()
    r = build_outcomes(tmp_path / "p", forsoeg=path, memory_limit="500MB",
                       temp_dir=tmp_path / "spill", out_dir=tmp_path / "o")
    e = pd.read_parquet(r.files["eksponering"])
    f = pd.read_parquet(tmp_path / "p" / "forloeb.parquet")
    fs = load_forsoeg(path)
    expected = {(s.spell_id, t.id): t.eksponeret(s.kommune_kode, s.ydelsesgruppe, s.start_dato)
                for s in f.itertuples() for t in fs if s.ydelsesgruppe in t.maalgruppe}
    got = {(a, b): bool(c) for a, b, c in zip(e["spell_id"], e["forsoeg_id"], e["eksponeret"])}
    assert got == expected and sum(expected.values()) > 20
    roles = {(b, k): ro for b, k, ro in zip(e["forsoeg_id"], e["kommune_kode"], e["rolle"])}
    for t in fs:
        for (tid, k), ro in roles.items():
            if tid == t.id:
                assert (ro == "kontrol") == (k in t.kontrol_kommuner())
    assert r.manifest["forsoeg"] == [t.id for t in fs]


def test_cli_build_and_ingest_print_the_same_reconciliation(tmp_path, capsys, corrupted_dataset):
    """`build` (compact lines) and `ingest` (tab table) print read = accepted + quarantined per
    register; the numbers equal the rows of the simulated raw files (pyarrow) and the
    quarantine files, and both commands print the same counts."""
    import pyarrow.parquet as pq

    from evaluering.cli import main

    raw, bad = corrupted_dataset(n_persons=800, seed=9)    # shared with test_simulate_corrupt
    assert main(["--quiet", "build", str(bad), "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    lines = [ln.split("\t") for ln in out.splitlines() if ln.startswith("ingest\t")]
    got_build = {ln[1]: tuple(int(x.split("=")[1]) for x in ln[2:]) for ln in lines}
    assert [x.split("=")[0] for x in lines[0][2:]] == ["read", "accepted", "quarantined"]
    assert "tid_til_job_kilde\tugestatus" in out and "panel_kvartal\t" in out
    assert main(["ingest", str(bad), "--out", str(tmp_path / "i")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"output\t{tmp_path / 'i'}"
    assert out[1] == "register\tread\taccepted\tquarantined\treasons"
    rows = [ln.split("\t") for ln in out[2:]]
    got_ingest = {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}
    assert got_build == got_ingest and set(got_build) == {"forloeb", "kontakter", "ugestatus"}
    truth = pd.read_csv(bad / "forventet_karantaene.csv")
    for reg, (read, acc, quar) in got_build.items():
        q = pq.read_table(tmp_path / "b" / "karantaene" / f"{reg}.parquet").num_rows
        assert quar == q == (truth["register"] == reg).sum() > 0
        assert read == acc + quar
        assert acc == pq.read_table(raw / f"{reg}.parquet").num_rows
    reasons = dict(r.split("=") for r in rows[0][4].split(","))
    assert sum(int(v) for v in reasons.values()) >= got_ingest[rows[0][0]][2]
