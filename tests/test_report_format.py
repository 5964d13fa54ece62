import datetime as dt

from evaluering.report.format import MINUS, dato, interval, kvartal, p_vaerdi, procent, procentpoint, tal


def test_danish_numbers():
    assert tal(1234.5) == "1.234,5"
    assert tal(1234567.891, 2) == "1.234.567,89"
    assert tal(-0.25, 2) == MINUS + "0,25"
    assert tal(-0.001, 1) == "0,0"  # no negative zero
    assert tal(3, 0) == "3"
    assert tal(float("nan")) == "–"
    assert tal(2.5, 1, fortegn=True) == "+2,5"


def test_shares_and_intervals():
    assert procent(0.123) == "12,3 pct."
    assert procentpoint(-0.021) == MINUS + "2,1 pct.-point"
    assert interval(-1.234, 3.456, 1) == f"[{MINUS}1,2; 3,5]"
    assert p_vaerdi(0.0004) == "< 0,001"
    assert p_vaerdi(0.0421) == "0,042"


def test_danish_dates():
    assert dato(dt.date(2017, 7, 1)) == "1. juli 2017"
    assert dato("2018-01-01") == "1. januar 2018"
    assert kvartal("2017Q3") == "3. kvt. 2017"
