"""Parameters of the register simulator's data-generating process.

All rates are continuous-time rates per week. They are illustrative: chosen so that spell
lengths, transition patterns and contact volumes look plausible for Danish jobcentre data,
not estimated from any register. Change them here, not in the simulator's code.
"""

from __future__ import annotations

import numpy as np

from evaluering import contract

GROUPS = contract.YDELSESGRUPPER
G = {g: i for i, g in enumerate(GROUPS)}
NG = len(GROUPS)

# competing risks, in this order; job and andet are the exits to self-support
RISKS = ("job", "uddannelse", "anden_ydelse", "pension", "doed_udvandret", "andet")
R_JOB, R_UDD, R_ANDEN, R_PEN, R_DOED, R_ANDET = range(6)


# Per-ydelsesgruppe parameters, one row a group. Columns: the baseline weekly hazards of the
# exits job, uddannelse, anden_ydelse and pension (at the reference covariate values, 2018
# level, no season); weekly contact rates on benefit: meetings (samtale), offers (tilbud),
# medical certificates LÆ 285 and LÆ 125, rehabilitation-team meetings (each comes with a
# LÆ 265); and the base share of the spell inflow (adjusted by covariates and calendar time).
_PER_GROUP_COLUMNS = ("job", "udd", "anden", "pen", "samtale", "tilbud", "lae285", "lae125",
                      "rehab", "andel")
_PER_GROUP = {
    #                      job    udd     anden  pen     samtale tilbud lae285 lae125 rehab  andel
    "a-dagpenge":         (0.075, 0.002,  0.003, 0.0004, 0.45,   0.05,  0.0,   0.0,   0.0,   0.36),
    "kontanthjaelp":      (0.020, 0.004,  0.005, 0.0008, 0.35,   0.06,  0.0,   0.004, 0.002, 0.11),
    "uddannelseshjaelp":  (0.028, 0.022,  0.004, 0.0001, 0.35,   0.07,  0.0,   0.0,   0.0,   0.07),
    "sygedagpenge":       (0.095, 0.001,  0.003, 0.0008, 0.25,   0.01,  0.06,  0.01,  0.0,   0.30),
    "jobafklaring":       (0.012, 0.001,  0.020, 0.003,  0.30,   0.03,  0.0,   0.005, 0.030, 0.02),
    "ressourceforloeb":   (0.006, 0.001,  0.008, 0.004,  0.25,   0.04,  0.0,   0.004, 0.025, 0.01),
    "ledighedsydelse":    (0.035, 0.001,  0.030, 0.002,  0.30,   0.03,  0.0,   0.0,   0.004, 0.02),
    "fleksjob":           (0.010, 0.0005, 0.004, 0.002,  0.08,   0.01,  0.0,   0.0,   0.002, 0.02),
    "revalidering":       (0.030, 0.012,  0.010, 0.0005, 0.25,   0.05,  0.0,   0.0,   0.0,   0.01),
    "integrationsydelse": (0.016, 0.005,  0.010, 0.0004, 0.35,   0.06,  0.0,   0.0,   0.0,   0.05),
}


def _per_group(column: str) -> np.ndarray:
    """One column of ``_PER_GROUP`` as an array indexed like ``GROUPS`` (0 for a group
    without a row)."""
    j = _PER_GROUP_COLUMNS.index(column)
    out = np.zeros(NG)
    for g, row in _PER_GROUP.items():
        out[G[g]] = row[j]
    return out


HAZ_JOB, HAZ_UDD, HAZ_ANDEN, HAZ_PEN = (_per_group(c) for c in ("job", "udd", "anden", "pen"))
HAZ_ANDET = 0.0025
HAZ_DOED = 0.0004


# duration spikes of transitions to another benefit (rule-driven revisits):
# sygedagpenge reassessment around week 22, a-dagpenge exhausted after 2 years
SPIKES = ((G["sygedagpenge"], 22, 30, 0.05), (G["a-dagpenge"], 104, 112, 0.15))
DURATION_DEPENDENCE = 0.4           # job hazard multiplier (1 + d/13) ** -0.4

# where a transition (anden_ydelse) leads: rows = from, dict of to: weight
TRANSITIONS = {
    "a-dagpenge": {"kontanthjaelp": 0.6, "sygedagpenge": 0.4},
    "kontanthjaelp": {"sygedagpenge": 0.3, "ressourceforloeb": 0.3, "uddannelseshjaelp": 0.1,
                      "jobafklaring": 0.1, "revalidering": 0.2},
    "uddannelseshjaelp": {"kontanthjaelp": 0.7, "sygedagpenge": 0.3},
    "sygedagpenge": {"jobafklaring": 0.7, "fleksjob": 0.1, "ledighedsydelse": 0.1,
                     "kontanthjaelp": 0.1},
    "jobafklaring": {"ressourceforloeb": 0.4, "sygedagpenge": 0.3, "ledighedsydelse": 0.3},
    "ressourceforloeb": {"ledighedsydelse": 0.5, "fleksjob": 0.2, "jobafklaring": 0.3},
    "ledighedsydelse": {"fleksjob": 1.0},
    "fleksjob": {"ledighedsydelse": 1.0},
    "revalidering": {"fleksjob": 0.5, "sygedagpenge": 0.5},
    "integrationsydelse": {"kontanthjaelp": 1.0},
}
TRANS = np.zeros((NG, NG))
for _f, _d in TRANSITIONS.items():
    for _t, _w in _d.items():
        TRANS[G[_f], G[_t]] = _w
TRANS /= TRANS.sum(axis=1, keepdims=True)

# weekly return hazard to a new spell after a self-supporting run (>= 5 weeks apart)
HAZ_RETURN = 0.011
MIN_JOB_RUN = 5                     # weeks: exits to self-support last > one month
SU_RUN = (12, 70)                   # SU runs: 12 + geometric with mean 70 weeks
P_MOVE = 0.06                       # a new spell (not a transition) in another municipality
P_INTERRUPT = 0.12                  # spells >= 10 weeks: one 1-3-week gap without benefit

# covariate effects on the log job hazard
B_KVINDE = -0.05
B_ALDER = -0.015                    # per year above 40
B_HERKOMST = {"dansk": 0.0, "vestlig": -0.10, "ikke_vestlig": -0.35}
B_UDDANNELSE = {"grundskole": -0.25, "gymnasial": 0.0, "erhvervsfaglig": 0.10,
                "videregaaende": 0.20}

# municipality heterogeneity (log job hazard): level sd, trend sd per year
SD_KOMMUNE_NIVEAU = 0.12
SD_KOMMUNE_TREND = 0.015
SEASON_AMPLITUDE = 0.15             # job hazard peaks in spring
BREAK_2020_HAZARD = -0.05           # national break 2020-01-01 (employment act simplified)
BREAK_FLEUR_ADAGPENGE = -0.05       # a-dagpenge from 2017-07-01 (register change RAM -> FLEUR)

# contacts: rates per week on benefit, by group
RATE_SAMTALE, RATE_TILBUD, RATE_LAE285, RATE_LAE125, RATE_REHAB = (
    _per_group(c) for c in ("samtale", "tilbud", "lae285", "lae125", "rehab"))
BREAK_2020_SAMTALE = 0.85           # spells starting from 2020: fewer mandatory meetings
BREAK_2020_LAE285 = 0.35            # LÆ 285 optional nationwide from 2020-01-01
P_FYSISK_2014 = 0.78                # share of meetings in person, 2014
P_FYSISK_TREND = -0.015             # per year
P_FYSISK_BREAK_2020 = -0.10
SD_KOMMUNE_FYSISK = 0.05
KANAL_OVRIGE = (("telefon", 0.6), ("video", 0.15), ("digital", 0.25))
MINUTTER = {"fysisk": 45.0, "telefon": 20.0, "video": 30.0, "digital": 10.0,
            "laegeattest": 15.0, "rehabiliteringsteam": 90.0, "tilbud": 30.0}
MINUTTER_SHAPE = 4.0                # gamma shape of minutes per contact
# doctors' fees in DKK: illustrative (not the current fee schedule)
GEBYR = {"LAE285": 775.0, "LAE125": 460.0, "LAE265": 2430.0}
TILBUD_UDGIFT_MEAN = 3500.0
N_KOMMUNER_UDEN_MINUTTER = 12       # control municipalities that do not record minutes

GROUP_SHARE = _per_group("andel")   # spell inflow: base shares of groups
CODES = {   # ydelsesgruppe/category -> (codes, probabilities) in ydelseskoder_simulator.toml
    "a-dagpenge":        (("111", "112"), (0.85, 0.15)),
    "kontanthjaelp":     (("135", "136"), (0.5, 0.5)),
    "uddannelseshjaelp": (("137",), (1.0,)),
    "integrationsydelse":(("138",), (1.0,)),
    "revalidering":      (("521", "522"), (0.7, 0.3)),
    "ressourceforloeb":  (("771",), (1.0,)),
    "jobafklaring":      (("774",), (1.0,)),
    "ledighedsydelse":   (("752",), (1.0,)),
    "fleksjob":          (("757",), (1.0,)),
    "sygedagpenge":      (("890", "891"), (0.9, 0.1)),
    "su":                (("651", "652"), (0.6, 0.4)),
    "pension":           (("783", "621"), (0.6, 0.4)),
    "doed_udvandret": (("998", "999"), (0.4, 0.6)),
}
