"""Aggregates: counts per organisation from practice up to England (engine/base.py OUTPUT CONTRACT;
engine/levels.py; product.md M1 "counts and rates at practice, PCN, sub-ICB, ICB, region and England").

The timeline below puts 10 SMI patients in 6 real practices (2022-23 structure):

    practice  PCN     sub-ICB  ICB  region   register  all six
    A81001    U89141  16C      QHM  Y63      3         2
    A81017    U89141  16C      QHM  Y63      1         1
    A81002    U07032  16C      QHM  Y63      3         1
    A82004    U08085  01H      QHM  Y63      1         0
    B81002    U03824  03F      QOQ  Y63      1         1
    G81001    U14062  09D      QNX  Y59      1         0

plus one patient in remission at A81001 (listed, not counted).
"""

from __future__ import annotations

import pytest

from spec.timeline import NHS_NUMBERS, declined_everything, practice_row, smi_patient, with_checks

AS_OF = "2024-03-31"
IN_WINDOW = "2023-09-15"

LAYOUT = [  # (practice, all six?)
    ("A81001", True), ("A81001", True), ("A81001", False),
    ("A81017", True),
    ("A81002", True), ("A81002", False), ("A81002", False),
    ("A82004", False),
    ("B81002", True),
    ("G81001", False),
]


def population():
    patients = []
    for nhs, (practice, complete) in zip(NHS_NUMBERS, LAYOUT, strict=False):
        p = smi_patient(nhs, practice)
        patients.append(with_checks(p, IN_WINDOW) if complete else with_checks(p, IN_WINDOW, ("bmi",)))
    in_remission = with_checks(smi_patient(NHS_NUMBERS[len(LAYOUT)], "A81001"), IN_WINDOW)
    patients.append(in_remission.code("MHREM_COD", "2020-01-01"))
    return patients


EXPECTED = {
    "practice": {
        "A81001": ("U89141", 3, 2, 66.7), "A81017": ("U89141", 1, 1, 100.0),
        "A81002": ("U07032", 3, 1, 33.3), "A82004": ("U08085", 1, 0, 0.0),
        "B81002": ("U03824", 1, 1, 100.0), "G81001": ("U14062", 1, 0, 0.0),
    },
    "pcn": {
        "U89141": ("16C", 4, 3, 75.0), "U07032": ("16C", 3, 1, 33.3), "U08085": ("01H", 1, 0, 0.0),
        "U03824": ("03F", 1, 1, 100.0), "U14062": ("09D", 1, 0, 0.0),
    },
    "sub_icb": {
        "16C": ("QHM", 7, 4, 57.1), "01H": ("QHM", 1, 0, 0.0), "03F": ("QOQ", 1, 1, 100.0),
        "09D": ("QNX", 1, 0, 0.0),
    },
    "icb": {"QHM": ("Y63", 8, 4, 50.0), "QOQ": ("Y63", 1, 1, 100.0), "QNX": ("Y59", 1, 0, 0.0)},
    "region": {"Y63": ("ENG", 9, 5, 55.6), "Y59": ("ENG", 1, 0, 0.0)},
    "england": {"ENG": (None, 10, 5, 50.0)},
}


@pytest.mark.parametrize("level", list(EXPECTED))
def test_counts_at_each_level(run, level):
    """register (denominator), all_six, percent and parent at every level."""
    orgs = run("phsmi", AS_OF, *population()).orgs(level)
    got = {code: (r["parent_code"], r["register"], r["all_six"], r["percent"]) for code, r in orgs.items()}
    assert got == EXPECTED[level]
    assert all(r["level"] == level for r in orgs.values())


def test_each_level_sums_to_the_level_above(run):
    """Every count at a level sums to the parent's count at the level above."""
    result = run("phsmi", AS_OF, *population())
    levels = list(EXPECTED)
    count_cols = ["register", "all_six", "all_checks", "excluded", "bmi", "blood_pressure", "lipids",
                  "glucose", "alcohol", "smoking", "bmi_declined"]
    for child_level, parent_level in zip(levels, levels[1:], strict=False):
        children = result.aggregate(child_level)
        parents = result.orgs(parent_level)
        sums = children.groupby("parent_code")[count_cols].sum()
        for parent_code, counts in sums.iterrows():
            for col in count_cols:
                assert parents[parent_code][col] == counts[col], (child_level, parent_code, col)


def test_org_names_from_the_structure(run):
    result = run("phsmi", AS_OF, *population())
    assert result.orgs("practice")["A81001"]["org_name"] == "The Densham Surgery"
    assert result.orgs("pcn")["U89141"]["org_name"] == "Stockton PCN"
    assert result.orgs("region")["Y59"]["org_name"] == "South East"
    assert result.orgs("england")["ENG"]["org_name"] == "England"


def test_per_check_counts_among_the_denominator(run):
    """Per-check counts are done among the denominator: the remission patient's checks are not counted."""
    org = run("phsmi", AS_OF, *population()).orgs("practice")["A81001"]
    assert org["register"] == 3
    assert org["bmi"] == 3
    assert org["blood_pressure"] == 2
    assert org["excluded"] == 0


@pytest.mark.parametrize(
    ("complete", "total", "percent"),
    [(1, 3, 33.3), (2, 3, 66.7), (1, 6, 16.7), (5, 6, 83.3), (1, 7, 14.3), (0, 2, 0.0), (2, 2, 100.0)],
)
def test_percent_to_one_decimal_place(run, complete, total, percent):
    """percent = 100 * all_six / register, to one decimal place."""
    patients = [
        with_checks(smi_patient(nhs), IN_WINDOW) if i < complete else smi_patient(nhs)
        for i, nhs in enumerate(NHS_NUMBERS[:total])
    ]
    org = run("phsmi", AS_OF, *patients).orgs("practice")["A81001"]
    assert (org["all_six"], org["register"], org["percent"]) == (complete, total, percent)


def test_register_of_zero_has_no_percent(run):
    """A practice whose only listed patient is in remission: register 0, percent None."""
    p = smi_patient().code("MHREM_COD", "2020-01-01")
    org = run("phsmi", AS_OF, p).orgs("practice")["A81001"]
    assert org["register"] == 0
    assert org["percent"] is None


def test_practice_not_in_structure_is_unmapped(run):
    """A patient registered at a practice missing from the structure is counted in an UNMAPPED row
    at every level below England, and in England (engine/levels.py)."""
    mapped = with_checks(smi_patient("9000000009", "A81001"), IN_WINDOW)
    unmapped = with_checks(smi_patient("9000000017", "Y99999"), IN_WINDOW)
    result = run("phsmi", AS_OF, mapped, unmapped)
    assert result.row("9000000017")["practice_code"] == "Y99999"
    for level in ("practice", "pcn", "sub_icb", "icb", "region"):
        orgs = result.orgs(level)
        assert set(orgs) == {"UNMAPPED", {"practice": "A81001", "pcn": "U89141", "sub_icb": "16C",
                                          "icb": "QHM", "region": "Y63"}[level]}
        row = orgs["UNMAPPED"]
        assert (row["register"], row["all_six"], row["parent_code"]) == (1, 1, None)
        assert row["org_name"] == "Practice not in 2022-23 structure"
    assert result.orgs("england")["ENG"]["register"] == 2


def test_structure_version_chooses_the_hierarchy(run):
    """Rows of other structure versions are ignored; a practice absent from the asked structure is unmapped."""
    practices = [
        practice_row("A81001"),
        practice_row("A81001", structure="2026", icb_code="QXX", icb_name="A 2026 ICB"),
        practice_row("A81002"),
    ]
    p1 = with_checks(smi_patient("9000000009", "A81001"), IN_WINDOW)
    p2 = smi_patient("9000000017", "A81002")
    result = run("phsmi", AS_OF, p1, p2, practices=practices)
    assert set(result.orgs("icb")) == {"QHM"}
    icb_2026 = result.orgs("icb", structure="2026")
    assert set(icb_2026) == {"QXX", "UNMAPPED"}
    assert icb_2026["QXX"]["register"] == 1
    assert icb_2026["UNMAPPED"]["register"] == 1


def test_qof_excluded_rolls_up(run):
    """PCA exclusions are counted in ``excluded`` and not in ``register``, at every level."""
    counted = with_checks(smi_patient("9000000009", "A81001"), IN_WINDOW)
    excluded = declined_everything(smi_patient("9000000017", "A81002"), IN_WINDOW)
    result = run("qof-mh021", AS_OF, counted, excluded)
    assert result.orgs("practice")["A81002"]["excluded"] == 1
    assert result.orgs("practice")["A81002"]["register"] == 0
    eng = result.orgs("england")["ENG"]
    assert (eng["register"], eng["excluded"], eng["all_six"], eng["percent"]) == (1, 1, 1, 100.0)
