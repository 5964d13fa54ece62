"""Trial catalogues (``forsoeg.toml`` text) shared by the report tests.

The two North Jutland trials as the simulator plants them, with the outcomes a test needs, so
each test builds only what it checks.
"""

from __future__ import annotations

NETWORK = '["851", "810", "813", "860", "849", "825", "846", "773", "840", "787", "820"]'
NORTH_ZEALAND = '["201", "151", "210", "250", "190", "270", "260", "217", "219"]'


def _udfald(udfald) -> str:
    return "[" + ", ".join(f'"{o}"' for o in udfald) + "]"


def meetings_insured(udfald, *, hjoerring_september: bool = True) -> str:
    """The meeting trial for a-dagpenge (round 1, 1 July 2017; Hjørring 1 September)."""
    text = f'''
[[forsoeg]]
id = "samtaler-forsikrede"
navn = "Formkrav ved lovpligtige samtaler – forsikrede ledige"
ordning = "nordjysk-netvaerk"
maalgruppe = ["a-dagpenge"]
start = "2017-07-01"
kommuner = {NETWORK}
slut = "2019-12-31"
udfald = {_udfald(udfald)}
udeluk_fra_kontrol = {NORTH_ZEALAND}
'''
    if hjoerring_september:
        text += '[forsoeg.start_pr_kommune]\n"860" = "2017-09-01"\n'
    return text


def certificates_sickness(udfald) -> str:
    """The medical-certificate trial for sygedagpenge (round 2, 1 January 2018)."""
    return f'''
[[forsoeg]]
id = "laegeattester-sygedagpenge"
navn = "Differentiering i valg af lægeattester på sygedagpengeområdet"
ordning = "nordjysk-netvaerk"
maalgruppe = ["sygedagpenge"]
start = "2018-01-01"
kommuner = ["851", "813", "860", "846", "787", "840"]
slut = "2019-12-31"
udfald = {_udfald(udfald)}
udeluk_fra_kontrol = {NORTH_ZEALAND}
'''
