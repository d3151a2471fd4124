"""The patient passport (M9): a patient-held summary of the yearly physical health check.

For each check it says, in plain English (short sentences, abbreviations explained): what the check
is, the latest result and its date, what the result means against the target, what happens next and
when the next check is due. It adds questions to ask and who to contact.

The only judgements made are comparisons with the targets in clinical-spec.md §4 (Lester tool /
NICE): BMI 18.5 to 24.9 (18.5 to 22.9 for South Asian or Chinese people), blood pressure under
140/90, HbA1c under 42 mmol/mol, total cholesterol 6.0 or lower, QRISK under 10%, AUDIT-C under 5,
and not smoking. A result the targets do not cover (for example a blood glucose reading, whose
target depends on whether the person had fasted) is shown with "ask your GP practice", never
interpreted. The targets are adult ones (Lester is an adult resource), so for a patient under 18
no result is compared with them.

``passport_context`` is pure (no I/O, no database): it reads a ``PatientRecord`` from
``parity.reports.timeline.patient_timeline``. ``render_passport_html`` gives a standalone,
accessible HTML page and ``render_passport_pdf`` prints the same page to A4.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from parity.care.documents.render import environment, html_to_pdf, long_date
from parity.codes import load_codelist
from parity.interop.letters import format_nhs_number
from parity.reports.timeline import CheckSummary, PatientRecord, TimelineEntry


def _lower_bmi_groups() -> frozenset[str]:
    """NHS ethnic category letters with the lower BMI threshold: the follow-up rule's own list
    (rules/interventions.toml ``bmi_high``, NICE obesity guideline 2022 update), so the passport and the
    red-zone finding never disagree."""
    from parity.rules.interventions import load_interventions

    crit = load_interventions().finding("bmi_high").criteria[0]
    return frozenset(letter for letter, _ in crit.value_by_ethnicity)

ADULT_AGE = 18
"""The targets are for adults (clinical-spec.md §4); younger patients' results are not compared with them."""


@dataclass(frozen=True)
class _About:
    """How a check is named and explained to the patient."""

    name: str
    what: str


# Plain-English names and explanations of the six core checks (clinical-spec.md §1.1). A check of an
# extended measure that is not listed here is shown under its own label with a general explanation.
ABOUT: dict[str, _About] = {
    "bmi": _About("Weight (BMI)", "BMI means body mass index. It uses your height and weight to check if your "
                                  "weight is healthy for your height."),
    "blood_pressure": _About("Blood pressure", "Blood pressure is how hard your heart pumps blood round your body."),
    "lipids": _About("Cholesterol", "A blood test for cholesterol. Cholesterol is a kind of fat in your blood."),
    "glucose": _About("Blood sugar", "A blood test for sugar in your blood. The HbA1c test shows your average "
                                     "blood sugar over the last 2 to 3 months."),
    "alcohol": _About("Alcohol", "Questions about how much alcohol you drink."),
    "smoking": _About("Smoking", "Questions about whether you smoke."),
}

GLOSSARY: tuple[tuple[str, str], ...] = (
    ("GP practice", "your doctor's surgery."),
    ("BMI", "body mass index. A number worked out from your height and weight."),
    ("HbA1c", "a blood test that shows your average blood sugar over the last 2 to 3 months."),
    ("mmol/L and mmol/mol", "units used to measure how much of something is in your blood."),
    ("QRISK", "a score that shows the chance of having a heart attack or stroke in the next 10 years."),
    ("AUDIT-C", "a short set of questions about how much alcohol you drink. It gives a score."),
    ("Target", "the result your GP practice aims for. It helps them decide what happens next."),
)

QUESTIONS: tuple[str, ...] = (
    "What do my results mean for me?",
    "Is there anything I can do to help my health?",
    "What happens if a result is higher than the target?",
    "When is my next check, and can I have it at a time that suits me?",
    "Can someone come with me to my check?",
)

# Short words for the summary table's "What it means" column: words, not colour, so they survive
# greyscale printing and screen readers.
_SHORT = {
    "higher": "Higher than target",
    "lower": "Lower than target",
    "not_met": "Does not meet the target",
    "ok": "Meets the target",
    "unknown": "Ask your GP practice",
    "missing": "Not done",
    "declined": "You said no",
}


@dataclass(frozen=True)
class _Reading:
    """One interpreted result: the words shown, and its place against its target (or None)."""

    text: str
    meaning: str
    verdict: str  # higher, lower, not_met, ok or unknown
    brief: str  # the result in a few words, for the summary table


def passport_context(record: PatientRecord, *, as_of: date, practice_name: str,
                     patient_name: str | None = None, made_on: date | None = None,
                     practice_phone: str | None = None) -> dict[str, Any]:
    """The passport's content for ``record`` on ``as_of``: plain data for the template (no I/O).

    ``practice_name`` is the patient's GP practice, named as who to contact; ``patient_name`` is
    printed when given (the extract's names are optional). ``made_on`` is the day the passport is made
    (default ``as_of``): results are as at ``as_of``, which may be earlier. ``practice_phone`` is the practice's
    published number (``parity.care.people.practice_phone``). The keys are
    ``checks`` (one dict per check of ``record.checks``: ``id``, ``name``, ``what``, ``result``, ``brief``,
    ``date``, ``meaning``, ``short``, ``next``, ``due``), ``done_count``, ``total``, ``questions``,
    ``glossary`` and the identification fields.
    """
    lower_bmi = (record.ethnicity or "").upper() in _lower_bmi_groups()
    adult = record.age >= ADULT_AGE
    checks = []
    for summary in record.checks:
        about = ABOUT.get(summary.check_id, _About(summary.label, "One of the extra checks your GP practice offers."))
        checks.append({"id": summary.check_id, "name": about.name, "what": about.what,
                       **_describe(summary, _latest_entries(record.entries, summary), lower_bmi, adult)})
    return {
        "as_of": long_date(as_of),
        "made_on": long_date(made_on or as_of),
        "created": (made_on or as_of).isoformat(),
        "practice_name": practice_name,
        "practice_phone": practice_phone,
        "patient_name": patient_name,
        "nhs_number": format_nhs_number(record.nhs_number),
        "date_of_birth": long_date(record.date_of_birth),
        "checks": checks,
        "done_count": sum(1 for s in record.checks if s.status == "done"),
        "total": len(record.checks),
        "bmi_target": _bmi_target(lower_bmi),
        "questions": QUESTIONS,
        "glossary": GLOSSARY,
    }


def render_passport_html(record: PatientRecord, *, as_of: date, practice_name: str,
                         patient_name: str | None = None, made_on: date | None = None,
                         practice_phone: str | None = None) -> str:
    """The passport as a complete standalone HTML page (``lang="en-GB"``, one ``h1``, headings in
    order, a captioned table, no scripts, no external resources; CSS inline). Free text is escaped."""
    ctx = passport_context(record, as_of=as_of, practice_name=practice_name, patient_name=patient_name,
                           made_on=made_on, practice_phone=practice_phone)
    return environment().get_template("passport.html").render(**ctx)


def render_passport_pdf(record: PatientRecord, *, as_of: date, practice_name: str,
                        patient_name: str | None = None, made_on: date | None = None,
                        practice_phone: str | None = None) -> bytes:
    """The passport as A4 PDF bytes (tagged PDF, weasyprint); same arguments as ``render_passport_html``."""
    return html_to_pdf(render_passport_html(record, as_of=as_of, practice_name=practice_name,
                                            patient_name=patient_name, made_on=made_on,
                                            practice_phone=practice_phone))


# -- interpreting one check ------------------------------------------------------------------------


@cache
def _ids(cluster: str) -> frozenset[int]:
    return load_codelist(cluster).ids()


def _latest_entries(entries: list[TimelineEntry], summary: CheckSummary) -> list[TimelineEntry]:
    """The done entries of ``summary``'s check on its latest date (the date the status counts)."""
    if summary.status != "done" or summary.last_date is None:
        return []
    return [e for e in entries if e.check_id == summary.check_id and e.kind == "done" and e.date == summary.last_date]


def _values(entries: list[TimelineEntry], cluster: str) -> float | None:
    """The largest value recorded with a code of ``cluster`` (the engine's rule for one day: the
    largest value, parity.reports.timeline), or None."""
    found = [e.value for e in entries if e.snomed_code in _ids(cluster) and e.value is not None]
    return max(found) if found else None


def _number(value: float, places: int) -> str:
    text = f"{round(value, places):.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _bmi_target(lower: bool) -> str:
    return "18.5 to 22.9" if lower else "18.5 to 24.9"


def _describe(summary: CheckSummary, latest: list[TimelineEntry], lower_bmi: bool, adult: bool) -> dict[str, str]:
    """Result, meaning, next step and due date of one check, in plain words."""
    months = summary.window_months
    if summary.status == "declined":
        return {"result": "You said no to this check", "brief": "You said no", "date": "",
                "meaning": "That is your choice.", "short": _SHORT["declined"],
                "next": "You can change your mind at any time. Ask your GP practice if you would like this check.",
                "due": "When you are ready"}
    if summary.status != "done" or summary.last_date is None:
        return {"result": f"Not done in the last {months} months", "brief": "Not done", "date": "",
                "meaning": "We do not have a result for this check.", "short": _SHORT["missing"],
                "next": "Ask your GP practice to book this check.", "due": "Now"}

    readings = _readings(summary.check_id, latest, lower_bmi, adult)
    verdicts = [r.verdict for r in readings]
    worst = next((v for v in ("higher", "lower", "not_met", "unknown") if v in verdicts), "ok")
    if worst in ("higher", "lower", "not_met"):
        next_step = "Your GP practice will talk to you about this."
    elif worst == "unknown":
        next_step = "Ask your GP practice what your result means."
    else:
        next_step = "Your GP practice will check this again at your next yearly check."
    return {
        "result": " ".join(r.text for r in readings),
        "brief": "; ".join(r.brief for r in readings),
        "date": long_date(summary.last_date),
        "meaning": " ".join(r.meaning for r in readings),
        "short": _SHORT[worst],
        "next": next_step,
        "due": long_date(summary.due) if summary.due is not None else "Ask your GP practice",
    }


_ASK = "Your GP practice can tell you what this result means."


def _compare(text: str, brief: str, adult: bool, higher: bool, higher_words: str, ok_words: str) -> _Reading:
    """A reading against an upper target; not compared for a patient under 18 (the targets are adult ones)."""
    if not adult:
        return _Reading(text, _ASK, "unknown", brief)
    if higher:
        return _Reading(text, higher_words, "higher", brief)
    return _Reading(text, ok_words, "ok", brief)


def _readings(check: str, latest: list[TimelineEntry], lower_bmi: bool, adult: bool) -> list[_Reading]:
    """The latest results of ``check`` compared with the targets of clinical-spec.md §4. Values are
    compared as shown (rounded), so the words always agree with the number printed."""
    if check == "bmi":
        bmi = _values(latest, "BMIVAL_COD")
        if bmi is None:  # a BMI category code without a value
            return [_Reading("Your weight was checked.", _ASK, "unknown", "Done")]
        shown, target = round(bmi, 1), _bmi_target(lower_bmi)
        text, brief = f"Your BMI was {_number(bmi, 1)}.", f"BMI {_number(bmi, 1)}"
        # Target BMI 18.5-24.9, 18.5-22.9 South Asian or Chinese (Lester S14, NICE PH46 S26).
        if adult and shown < 18.5:
            return [_Reading(text, f"Your BMI is lower than the target of {target}.", "lower", brief)]
        return [_compare(text, brief, adult, shown > (22.9 if lower_bmi else 24.9),
                         f"Your BMI is higher than the target of {target}.",
                         f"Your BMI is in the target range of {target}.")]

    if check == "blood_pressure":
        systolic, diastolic = _values(latest, "SYSBP_COD"), _values(latest, "DIABP_COD")
        if systolic is not None and diastolic is not None:
            reading = f"{_number(systolic, 0)}/{_number(diastolic, 0)}"
            text, brief = f"Your blood pressure was {reading}.", reading
        elif systolic is not None:
            text = f"The top number of your blood pressure was {_number(systolic, 0)}."
            brief = f"Top number {_number(systolic, 0)}"
        elif diastolic is not None:
            text = f"The bottom number of your blood pressure was {_number(diastolic, 0)}."
            brief = f"Bottom number {_number(diastolic, 0)}"
        else:
            return [_Reading("Your blood pressure was checked.", _ASK, "unknown", "Done")]
        # Target under 140/90 (Lester S14): the top number under 140 and the bottom number under 90.
        high = (systolic is not None and round(systolic) >= 140) or (diastolic is not None and round(diastolic) >= 90)
        return [_compare(text, brief, adult, high, "Your blood pressure is higher than the target of under 140/90.",
                         "Your blood pressure meets the target of under 140/90.")]

    if check == "lipids":
        out: list[_Reading] = []
        total, qrisk = _values(latest, "CHOL2_COD"), _values(latest, "QRISKSCORE_COD")
        if total is not None:  # target total cholesterol 6.0 or lower (Lester S14: red zone above 6.0 mmol/L)
            shown = _number(total, 1)
            out.append(_compare(f"Your cholesterol was {shown} mmol/L.", f"{shown} mmol/L", adult,
                                round(total, 1) > 6.0, "Your cholesterol is higher than the target of 6.0 or lower.",
                                "Your cholesterol meets the target of 6.0 or lower."))
        if qrisk is not None:  # target QRISK under 10% (NICE CG181, S26)
            shown = _number(qrisk, 1)
            out.append(_compare(f"Your QRISK score was {shown}%.", f"QRISK {shown}%", adult, round(qrisk, 1) >= 10,
                                "Your QRISK score is higher than the target of under 10%.",
                                "Your QRISK score meets the target of under 10%."))
        return out or [_Reading("Your cholesterol was checked.", _ASK, "unknown", "Done")]

    if check == "glucose":
        hba1c = _values(latest, "IFCCHBAM_COD")
        if hba1c is None:  # blood glucose, HbA1c in % or fructosamine: no sourced target to compare with
            return [_Reading("Your blood sugar was checked.", _ASK, "unknown", "Done")]
        shown = _number(hba1c, 0)  # target HbA1c under 42 mmol/mol (Lester S14: red zone 42 and above)
        return [_compare(f"Your HbA1c was {shown} mmol/mol.", f"HbA1c {shown} mmol/mol", adult, round(hba1c) >= 42,
                         "Your HbA1c is higher than the target of under 42.",
                         "Your HbA1c meets the target of under 42.")]

    if check == "alcohol":
        score = _values(latest, "AUDITC_COD")
        if score is None:
            return [_Reading("You answered questions about alcohol.", _ASK, "unknown", "Done")]
        shown = _number(score, 0)  # target AUDIT-C under 5 (a score of 5 or more is positive, S27)
        return [_compare(f"Your AUDIT-C score was {shown}.", f"AUDIT-C score {shown}", adult, round(score) >= 5,
                         "Your AUDIT-C score is higher than the target of under 5.",
                         "Your AUDIT-C score meets the target of under 5.")]

    if check == "smoking":
        codes = {e.snomed_code for e in latest}
        # Several codes on one day: the least favourable wins (current, then ex-, then never smoked).
        # Target: not smoking (Lester S14, smoking cessation).
        if codes & _ids("LSMOK_COD"):
            return [_Reading("You smoke.", "The target is not smoking.", "not_met", "You smoke")]
        if codes & _ids("EXSMOK_COD"):
            return [_Reading("You have stopped smoking.", "This meets the target of not smoking.", "ok",
                             "Stopped smoking")]
        if codes & _ids("NSMOK_COD"):
            return [_Reading("You have never smoked.", "This meets the target of not smoking.", "ok", "Never smoked")]
        return [_Reading("You answered questions about smoking.", _ASK, "unknown", "Done")]

    return [_Reading("This check was done.", _ASK, "unknown", "Done")]
