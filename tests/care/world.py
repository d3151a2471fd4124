"""A small practice for the care tests: five patients with different gaps in their checks.

In the year to 30 September 2026: ALL has all six; QUICK lacks only smoking; BLOODS lacks lipids and
glucose; MOST lacks BP, lipids, glucose and smoking (and had a medication review in February); DNA
lacks lipids and glucose.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from interop.world import SMI_DIAGNOSIS
from interop.world import test_range_numbers as numbers

PRACTICE = "J82155"
AS_OF = date(2026, 9, 30)
ALL, QUICK, BLOODS, MOST, DNA = numbers(5, start=900_100_000)
BORN = {ALL: "1970-10-02", QUICK: "1971-10-15", BLOODS: "1980-10-20", MOST: "1990-02-11", DNA: "1985-10-30"}
CODES = {"bmi": (60621009, 27), "sys": (72313002, 120), "dia": (1091811000000102, 80),
         "lipids": (1005671000000105, 5), "glucose": (999791000000106, 40), "alcohol": (763256006, 2),
         "smoking": (8517006, None)}
HAS = {ALL: list(CODES), QUICK: ["bmi", "sys", "dia", "lipids", "glucose", "alcohol"],
       BLOODS: ["bmi", "sys", "dia", "alcohol", "smoking"], MOST: ["bmi", "alcohol"],
       DNA: ["bmi", "sys", "dia", "alcohol", "smoking"]}
MEDICATION_REVIEW = 182836005


def write_practice(folder: Path) -> Path:
    """The practice as a canonical extract in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patients.csv").write_text("nhs_number,date_of_birth,sex\n"
                                         + "".join(f"{n},{b},female\n" for n, b in BORN.items()))
    (folder / "registrations.csv").write_text("nhs_number,practice_code,start_date,end_date\n"
                                              + "".join(f"{n},{PRACTICE},2010-01-01,\n" for n in BORN))
    rows = [f"{n},2015-01-01,{SMI_DIAGNOSIS},," for n in BORN]
    for n, has in HAS.items():
        rows += [f"{n},2026-05-01,{CODES[k][0]},{'' if CODES[k][1] is None else CODES[k][1]}," for k in has]
    rows.append(f"{MOST},2026-02-03,{MEDICATION_REVIEW},,")
    (folder / "events.csv").write_text("nhs_number,date,snomed_code,value,unit\n" + "\n".join(rows) + "\n")
    return folder
