"""How each published source code maps to an organisation structure (used by ``parity.reports.published``).

Each figure is shown in one structure (issue 11): by default the one in force at the end of the published
period (``parity.orgs.structure_in_force``): the **2022-23** structure (42 ICBs, the 2021 ICS footprints, so
2021 board figures are reproduced) for periods before April 2026, the **2026** structure after. For 2022-23
the rules below apply with "2026" read as "2022-23" (rule 2 never applies: every 2022-23 sub-ICB exists).

Code mapping (:func:`code_map`): each source code (CCG of 2013–2021 or sub-ICB location of 2022–) is
mapped to the **2026** structure (``parity.orgs`` structure ``"2026"``: NHS England GP registration
mapping of August 2026, 36 ICBs, 7 regions) in this order, with the ``how`` column saying which rule
applied:

1. ``same code``: the code is a sub-ICB location of the 2026 structure; ICB and region are its 2026
   parents.
2. ``split in 2026: majority of practices``: the code is a sub-ICB of the 2022-23 structure that no
   longer exists in 2026 (only Frimley ``D4U1Y``, split three ways in April 2026). Its practices are
   followed into the 2026 structure (practice-code join of the two ``parity.orgs`` structures) and the
   code is mapped to the 2026 sub-ICB holding most of them; ``note`` gives every share. The split cannot
   be undone from organisation-level figures, so Frimley's figures go wholly to that sub-ICB.
3. ``successor via ODS end-date/parent ICB``: the code is a closed CCG in the ODS ``eccg`` file
   (legal end date set); its ODS parent ("High Level Health Geography", the ICB it was folded into)
   has exactly one sub-ICB location in the 2022-23 structure, which is its successor; that successor is
   then mapped by rule 1 or 2.
4. ``manual, with the source``: a closed CCG whose parent ICB has several sub-ICB locations. The
   successor comes from the NHS CCG mergers of April 2020 and April 2021 (table :data:`MANUAL_SUCCESSORS`,
   each entry naming the merged CCG; checked against ``eccg``: the successor is in the same ICB and its
   legal start date is the day after the predecessor's legal end date).
5. Anything else (codes absent from ``eccg``, commissioning hubs) is left unmapped and reported by
   :func:`unmapped_codes`; it still counts in the England total, never in a region, ICB or sub-ICB.

ODS data: ``data/eccg_2026-02.csv``, a column subset of the NHS ODS ``eccg.xls`` of February 2026
(provenance in ``data/SOURCES.md``). Regions are the 2026 structure's; for every source code in the
compilation they equal the ODS "National Grouping", so regional totals agree with clinical-spec.md §5.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any

import pandas as pd

__all__ = ["MANUAL_SUCCESSORS", "code_map", "full_map"]

MANUAL_SUCCESSORS: dict[str, tuple[str, str]] = {
    # predecessor CCG: (successor sub-ICB location, the merger it was part of)
    "00C": ("16C", "NHS Tees Valley CCG, April 2020 (Darlington, Hartlepool and Stockton-on-Tees, South Tees)"),
    "00K": ("16C", "NHS Tees Valley CCG, April 2020 (Darlington, Hartlepool and Stockton-on-Tees, South Tees)"),
    "00M": ("16C", "NHS Tees Valley CCG, April 2020 (Darlington, Hartlepool and Stockton-on-Tees, South Tees)"),
    "00D": ("84H", "NHS County Durham CCG, April 2020 (Durham Dales Easington and Sedgefield, North Durham)"),
    "00J": ("84H", "NHS County Durham CCG, April 2020 (Durham Dales Easington and Sedgefield, North Durham)"),
    "01C": ("27D", "NHS Cheshire CCG, April 2020 (Eastern, South, Vale Royal and West Cheshire)"),
    "01R": ("27D", "NHS Cheshire CCG, April 2020 (Eastern, South, Vale Royal and West Cheshire)"),
    "02D": ("27D", "NHS Cheshire CCG, April 2020 (Eastern, South, Vale Royal and West Cheshire)"),
    "02F": ("27D", "NHS Cheshire CCG, April 2020 (Eastern, South, Vale Royal and West Cheshire)"),
    "02N": ("36J", "NHS Bradford District and Craven CCG, April 2020 (Airedale Wharfedale and Craven, "
                   "Bradford City, Bradford Districts)"),
    "02R": ("36J", "NHS Bradford District and Craven CCG, April 2020 (Airedale Wharfedale and Craven, "
                   "Bradford City, Bradford Districts)"),
    "02W": ("36J", "NHS Bradford District and Craven CCG, April 2020 (Airedale Wharfedale and Craven, "
                   "Bradford City, Bradford Districts)"),
    "03A": ("X2C4Y", "NHS Kirklees CCG, April 2021 (Greater Huddersfield, North Kirklees)"),
    "03J": ("X2C4Y", "NHS Kirklees CCG, April 2021 (Greater Huddersfield, North Kirklees)"),
    "03D": ("42D", "NHS North Yorkshire CCG, April 2020 (Hambleton Richmondshire and Whitby, Harrogate and "
                   "Rural District, Scarborough and Ryedale)"),
    "03E": ("42D", "NHS North Yorkshire CCG, April 2020 (Hambleton Richmondshire and Whitby, Harrogate and "
                   "Rural District, Scarborough and Ryedale)"),
    "03M": ("42D", "NHS North Yorkshire CCG, April 2020 (Hambleton Richmondshire and Whitby, Harrogate and "
                   "Rural District, Scarborough and Ryedale)"),
    **dict.fromkeys(("04E", "04H", "04K", "04L", "04M", "04N"), (
        "52R", "NHS Nottingham and Nottinghamshire CCG, April 2020 (Mansfield and Ashfield, Newark and Sherwood, "
               "Nottingham City, Nottingham North and East, Nottingham West, Rushcliffe)")),
    **dict.fromkeys(("09F", "09P", "99K"), (
        "97R", "NHS East Sussex CCG, April 2020 (Eastbourne Hailsham and Seaford, Hastings and Rother, "
               "High Weald Lewes Havens)")),
    **dict.fromkeys(("09G", "09H", "09X"), (
        "70F", "NHS West Sussex CCG, April 2020 (Coastal West Sussex, Crawley, Horsham and Mid Sussex)")),
    **dict.fromkeys(("10J", "10K", "10L", "10V", "10X", "11A"), (
        "D9Y0V", "NHS Hampshire, Southampton and Isle of Wight CCG, April 2021 (Fareham and Gosport, Isle of Wight, "
                 "North Hampshire, South Eastern Hampshire, Southampton, West Hampshire)")),
}
"""Closed CCGs whose parent ICB holds several sub-ICB locations: their successor, with the merger."""


@functools.cache
def _eccg() -> pd.DataFrame:
    resource = resources.files("parity.reports").joinpath("data", "eccg_2026-02.csv")
    with resource.open("rb") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False).set_index("org_code", drop=False)


def _day(text: str) -> date | None:
    return datetime.strptime(text, "%Y%m%d").date() if text else None


@functools.cache
def full_map(structure: str = "2026") -> pd.DataFrame:
    """Every code of the ODS file with its mapping to ``structure`` (cached; see the module docstring)."""
    from parity import orgs

    orgs.check_structure(structure)
    eccg = _eccg()
    p22 = orgs.practices("2022-23")
    p26 = orgs.practices(structure)
    subs26 = p26.drop_duplicates("sub_icb_code").set_index("sub_icb_code")
    subs22 = set(p22["sub_icb_code"])
    icb_subs22 = p22.groupby("icb_code")["sub_icb_code"].agg(lambda s: sorted(set(s)))
    joined = p22[["practice_code", "sub_icb_code"]].merge(
        p26[["practice_code", "sub_icb_code"]], on="practice_code", suffixes=("_22", "_26"))
    shares = joined.groupby(["sub_icb_code_22", "sub_icb_code_26"]).size()

    def live(code: str) -> tuple[str | None, str, str]:
        """(2026 sub-ICB, how, note) for a live 2022-23 or 2026 sub-ICB code."""
        if code in subs26.index:
            return code, "same code", ""
        if code in subs22 and code in shares.index.get_level_values(0):
            split = shares.loc[code].sort_values(ascending=False)
            total = int(split.sum())
            note = "practices: " + ", ".join(f"{int(n)}/{total} to {c}" for c, n in split.items())
            return str(split.index[0]), "split in 2026: majority of practices", note
        return None, "unmapped", "not a sub-ICB location of the 2022-23 or 2026 structure"

    records = []
    for code, row in eccg.iterrows():
        end = row["legal_end"]
        how, note, target = "unmapped", "", None
        if "RO218" in row["role"]:
            note = "commissioning hub, not a sub-ICB location"
        elif not end:
            target, how, note = live(str(code))
        else:
            successor, source = None, ""
            if code in MANUAL_SUCCESSORS:
                successor, source = MANUAL_SUCCESSORS[str(code)]
                check = eccg.loc[successor] if successor in eccg.index else None
                ok = (check is not None and check["icb_code"] == row["icb_code"]
                      and _day(check["legal_start"]) == _day(end) + timedelta(days=1))
                how = "manual, with the source"
                note = f"successor {successor}: {source}" + ("" if ok else " (NOT consistent with eccg dates/ICB)")
            else:
                candidates = icb_subs22.get(row["icb_code"], [])
                if len(candidates) == 1:
                    successor = candidates[0]
                    how = "successor via ODS end-date/parent ICB"
                    note = (f"closed {_day(end).isoformat()}; only sub-ICB of ODS parent {row['icb_code']} "
                            f"is {successor}")
                else:
                    note = f"closed {end}; parent {row['icb_code']} has {len(candidates)} sub-ICBs, no successor"
            if successor:
                target, how2, note2 = live(successor)
                if how2 != "same code":
                    how, note = f"{how}; then {how2}", f"{note}; {successor}: {note2}"
                if target is None:
                    how = "unmapped"
        rec: dict[str, Any] = {"source_code": code, "source_name": row["org_name"],
                               "source_end": _day(end), "ods_region": row["region_code"], "ods_icb": row["icb_code"],
                               "mapped_sub_icb": target, "sub_icb_name": None, "icb_code": None, "icb_name": None,
                               "region_code": None, "region_name": None, "how": how, "note": note}
        if target is not None:
            t = subs26.loc[target]
            rec.update(sub_icb_name=t["sub_icb_name"], icb_code=t["icb_code"], icb_name=t["icb_name"],
                       region_code=t["region_code"], region_name=t["region_name"])
        records.append(rec)
    return pd.DataFrame(records).sort_values("source_code", ignore_index=True)


def code_map(codes: list[str] | None = None, structure: str = "2026") -> pd.DataFrame:
    """How each source code maps to the sub-ICB, ICB and region of ``structure`` (see the module docstring).

    Columns: ``source_code, source_name, source_end, ods_region, ods_icb, mapped_sub_icb, sub_icb_name,
    icb_code, icb_name, region_code, region_name, how, note``. ``codes`` keeps only those codes; a code
    not in the ODS file gets a row with ``how`` "unmapped".
    """
    frame = full_map(structure).copy()
    if codes is None:
        return frame
    wanted = sorted({str(c).strip().upper() for c in codes})
    missing = [c for c in wanted if c not in set(frame["source_code"])]
    extra = pd.DataFrame({"source_code": missing, "how": "unmapped", "note": "not in the ODS eccg file"})
    out = frame[frame["source_code"].isin(wanted)]
    return pd.concat([out, extra], ignore_index=True) if missing else out.reset_index(drop=True)
