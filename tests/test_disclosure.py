import numpy as np
import pandas as pd
import pytest

from evaluering.errors import DisclosureError
from evaluering.report.disclosure import (DisclosureRules, check_printable, complementary_suppression,
                                          suppress_table)


def test_rules_never_below_three():
    with pytest.raises(ValueError):
        DisclosureRules(min_persons=2)
    assert DisclosureRules(3).min_persons == 3


def test_primary_suppression_and_zero_cells():
    r = DisclosureRules()
    counts = pd.DataFrame({"a": [0, 4, 5], "b": [12, 1, 30]})
    t = suppress_table(counts.astype(float), counts, r)
    assert t.mask.to_numpy().tolist() == [[False, False], [True, True], [False, False]]


def test_complementary_suppression_hides_from_margins():
    rng = np.random.default_rng(3)
    r = DisclosureRules()
    for _ in range(200):
        counts = rng.integers(0, 40, size=(5, 4)).astype(float)
        counts[rng.random(counts.shape) < 0.15] = rng.integers(1, 5)
        prim = r.is_small(counts)
        m, row_tot, col_tot = complementary_suppression(counts, prim)
        assert (m >= prim).all()
        # every line with a hidden cell has at least two hidden cells or a hidden total
        for i in range(m.shape[0]):
            assert m[i].sum() != 1 or row_tot[i]
        for j in range(m.shape[1]):
            assert m[:, j].sum() != 1 or col_tot[j]


def test_check_printable_fails_the_build_on_small_cells():
    r = DisclosureRules()
    check_printable(3.2, 5, r)
    check_printable(float("nan"), 2, r)
    with pytest.raises(DisclosureError):
        check_printable(0.5, 4, r, what="share in job")
    with pytest.raises(DisclosureError):
        check_printable(0.5, None, r)


def test_person_counts_hidden_against_differencing():
    """A record's person counts are hidden when they, or their difference with a total printed
    in the trial's municipality table, are 1..k-1 (hand-made counts)."""
    from types import SimpleNamespace

    import pandas as pd

    from evaluering.report.disclosure import DisclosureRules
    from evaluering.report.document import person_counts_hidden

    persons = pd.DataFrame({"forsoeg": ["f"] * 3, "rolle": ["behandlet", "kontrol", "kontrol"],
                            "kommune_kode": ["1", "2", "3"], "n_personer": [40, 100, 60]})
    an = SimpleNamespace(persons=persons)
    rules = DisclosureRules(5)
    rec = {"forsoeg": "f", "n_persons": 200, "n_persons_exposed": 30}
    assert person_counts_hidden(an, rec, rules) == (False, False)
    # 163 - 160 (control total) = 3 persons only in the trial municipality
    assert person_counts_hidden(an, dict(rec, n_persons=163), rules)[0]
    # 37 of the trial municipality's 40 exposed: 3 persons not exposed
    assert person_counts_hidden(an, dict(rec, n_persons_exposed=37), rules)[1]
    assert person_counts_hidden(an, dict(rec, n_persons_exposed=4), rules)[1]
    assert person_counts_hidden(an, dict(rec, n_persons_exposed=0), rules)[1] is False
    # exactly the control total: the difference is 0, not a small cell
    assert not person_counts_hidden(an, dict(rec, n_persons=160), rules)[0]


def test_event_point_persons_take_base_period_and_controls():
    """An event-study point rests on the treated cells at e and at its base period and on
    control cells: it carries the smallest of those person counts (hand-made counts)."""
    import pandas as pd

    from evaluering.report.document import event_point_persons

    pp = pd.DataFrame({"gruppe": ["e"] * 5 + ["kontrol"] * 3,
                       "noegle": [-3, -2, -1, 0, 1, 10, 11, 12],
                       "n_x": [50, 3, 40, 30, 20, 900, 0, 800]})
    e = pd.Series([-2, -1, 0, 1])
    # varying base: e=-2 vs -3 (3 at -2), e=-1 vs -2 (3), post vs -1
    assert list(event_point_persons(e, pp, "x", "varying")) == [3, 3, 30, 20]
    assert list(event_point_persons(e, pp, "x", "universal")) == [3, 40, 30, 20]
    pp.loc[pp["noegle"] == 12, "n_x"] = 4                 # a small control period
    assert max(event_point_persons(e, pp, "x", "universal")) == 4
