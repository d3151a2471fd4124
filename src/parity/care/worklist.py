"""Worklists for practices and outreach teams, ranked by expected gain towards the all-six measure (M5).

Every row says why it is there. The ranking is explainable on purpose (a practice must be able to
say why one person is above another), so it is a score, not a model:

    expected gain = P(completes) / effort

- **effort**, in appointments: 1 if BMI or blood pressure is missing (a clinic visit), +1 if lipids or
  glucose is missing (a blood test; one sample does both), +0.25 if only alcohol and/or smoking is
  missing (a phone call or text: the "quick info gather"). A patient with nothing missing has no gain;
- **P(completes)** starts at 0.9 and halves for each missed appointment in the current cycle; a
  declined check still missing multiplies it by 0.3 (people can change their mind, but less often);
  patients on the outreach list get 0.5 (a visit is more work, and more likely to succeed).

These weights are Parity's choice (no published source ranks SMI recall); they are constants here,
named, so a practice can see and change them. Near-misses come first because they need least effort
for the same gain of one person with all six checks.

People who already have all six have nothing to gain and are not on the list. Someone missing only
alcohol or smoking status (none declined) is a "quick info gather": the next action is to ask by phone
or text, not to send an invitation, unless they are already booked or with the outreach team.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import pandas as pd

from parity.care.contacts import OPTIONS, Contact, preferences
from parity.care.protocol import ProtocolState, state_on
from parity.rules.model import CORE_CHECKS

VISIT_CHECKS = ("bmi", "blood_pressure")
BLOOD_CHECKS = ("lipids", "glucose")
QUICK_CHECKS = ("alcohol", "smoking")   # no procedure: can be asked by phone or text
BASE_CHANCE = 0.9
DNA_FACTOR = 0.5
DECLINED_FACTOR = 0.3
OUTREACH_CHANCE = 0.5
QUICK_EFFORT = 0.25
RANKED_COLUMNS = ("missing_ids", "effort", "chance", "expected_gain", "protocol_state", "next_action",
                  "action_from", "quick_info", "outreach", "why")
QUICK_ACTION = "Ask by phone or text (quick info gather)"
# Only alcohol or smoking missing but declined before: no appointment either, the question is asked again.
ASK_AGAIN_ACTION = "Ask again at the next contact (declined before)"
# Protocol states in which a quick info gather replaces the invitation: nothing is booked yet.
QUICK_STATES = ("due", "invited", "dna_once", "second_invited")
LABELS = {"bmi": "BMI", "blood_pressure": "blood pressure", "lipids": "lipids", "glucose": "glucose or HbA1c",
          "alcohol": "alcohol", "smoking": "smoking status"}


def missing_checks(row: Mapping[str, object], checks: tuple[str, ...]) -> list[str]:
    return [c for c in checks if row.get(f"{c}_status") != "done"]


def effort(missing: list[str]) -> float:
    """Appointments needed to complete ``missing`` (see the module docstring)."""
    if not missing:
        return 0.0
    cost = 0.0
    if any(c in VISIT_CHECKS for c in missing):
        cost += 1.0
    if any(c in BLOOD_CHECKS for c in missing):
        cost += 1.0
    if cost == 0.0:
        cost = QUICK_EFFORT
    return cost


def chance(state: ProtocolState, declined_missing: bool) -> float:
    p = OUTREACH_CHANCE if state.state == "outreach" else BASE_CHANCE * DNA_FACTOR ** state.dnas
    return p * (DECLINED_FACTOR if declined_missing else 1.0)


def reason_text(done: int, of: int, missing: list[str], state: ProtocolState, prefs: tuple[str, ...],
                declined: list[str] | None = None) -> str:
    """Why the row is on the list, in words a practice uses (the same advice as the next action)."""
    words = [f"{done} of {of} done"]
    if missing:
        names = ", ".join(LABELS.get(c, c) for c in missing)
        if all(c in QUICK_CHECKS for c in missing) and declined:
            words.append(f"only {names} missing, declined before: ask again at the next contact")
        elif all(c in QUICK_CHECKS for c in missing):
            words.append(f"only {names} missing: ask by phone or text")
        else:
            words.append(f"missing {names}")
    if state.dnas:
        words.append(f"missed {state.dnas} appointment{'s' if state.dnas > 1 else ''}")
    if state.state == "outreach":
        words.append(f"outreach: {state.reason}")
    elif state.state not in ("due", "attended"):
        words.append(state.words.lower())
    if prefs:
        words.append("prefers " + ", ".join(OPTIONS[p].lower() for p in prefs if p in OPTIONS))
    return "; ".join(words)


def ranked(wl: pd.DataFrame, contacts: Mapping[str, list[Contact]], as_of: date,
           core: tuple[str, ...] = CORE_CHECKS) -> pd.DataFrame:
    """The worklist ``wl`` (``parity.reports.worklist.worklist``) ranked by expected gain, with why.

    Adds ``missing_ids``, ``effort``, ``chance``, ``expected_gain``, ``protocol_state``, ``next_action``,
    ``action_from``, ``quick_info`` (only alcohol/smoking missing, none declined), ``outreach`` and ``why``.
    Patients with all six done are left out: they have nothing to gain.
    """
    rows, keep = [], []
    for i, rec in enumerate(wl.to_dict("records")):
        history = contacts.get(str(rec["nhs_number"]), [])
        state = state_on(history, as_of)
        missing = missing_checks(rec, core)
        if not missing:
            continue
        declined_missing = any(rec.get(f"{c}_status") == "declined" for c in missing)
        cost = effort(missing)
        p = chance(state, declined_missing)
        gain = round(p / cost, 4) if cost else 0.0
        quick_only = all(c in QUICK_CHECKS for c in missing)
        quick = quick_only and not declined_missing
        action, action_from = state.next_action, state.action_from
        if quick_only and state.state in QUICK_STATES:
            action, action_from = (QUICK_ACTION if quick else ASK_AGAIN_ACTION), as_of
        keep.append(i)
        rows.append({
            "missing_ids": ",".join(missing), "effort": cost, "chance": round(p, 4), "expected_gain": gain,
            "protocol_state": state.state, "next_action": action, "action_from": action_from,
            "quick_info": quick,
            "outreach": state.state == "outreach",
            "why": reason_text(len(core) - len(missing), len(core), missing, state, preferences(history),
                               declined=[c for c in missing if rec.get(f"{c}_status") == "declined"]),
        })
    if not rows:
        out = wl.iloc[0:0].copy()
        for col in RANKED_COLUMNS:
            out[col] = pd.Series(dtype=object)
        return out
    out = pd.concat([wl.iloc[keep].reset_index(drop=True), pd.DataFrame(rows, index=range(len(rows)))], axis=1)
    order = sorted(range(len(out)), key=lambda i: (-out.at[i, "expected_gain"], -int(out.at[i, "checks_done"]),
                                                   str(out.at[i, "nhs_number"])))
    return out.iloc[order].reset_index(drop=True)


def quick_info_gather(ranked_wl: pd.DataFrame) -> pd.DataFrame:
    """Patients whose only missing checks need no procedure (alcohol, smoking): a phone call or text."""
    return ranked_wl[ranked_wl["quick_info"]].reset_index(drop=True)


def outreach_list(ranked_wl: pd.DataFrame) -> pd.DataFrame:
    """Patients the DNA protocol sends to outreach, with the reason, still missing checks."""
    keep = ranked_wl["outreach"] & (ranked_wl["missing_ids"] != "")
    return ranked_wl[keep].reset_index(drop=True)
