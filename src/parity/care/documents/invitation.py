"""Invitations to the yearly physical health check (M5 recall): a printable letter batch and SMS texts.

``render_invitation_pdf`` prints one A4 page per patient, so a practice can print a month's
invitations in one go. The DNA protocol (product.md M5) sends a second invitation at least 7 days
after the first; ``Invitation.number`` says which one a letter is, and the second says so.

SMS is not a secure channel, so ``sms_text`` carries no NHS number, no name and no clinical detail
beyond "your yearly physical health check" (not the checks due, not the register). It is kept
within 2 SMS segments: 306 characters of the GSM 7-bit alphabet (3GPP TS 23.038; a concatenated
segment holds 153 septets). Characters outside that alphabet would switch the whole message to UCS-2
(67 characters a segment), so the practice name is reduced to GSM characters first.
``sms_export_csv`` gives the practice's own messaging system a CSV (``nhs_number``, ``message``) to
match to phone numbers; the NHS number is only in that file, never in the message.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from parity.care.documents.passport import ABOUT
from parity.care.documents.render import environment, html_to_pdf, long_date
from parity.interop.letters import format_nhs_number
from parity.reports.timeline import PatientRecord

SMS_MAX = 306
"""Two concatenated SMS segments of GSM 7-bit text (2 x 153 septets, 3GPP TS 23.038)."""

DEFAULT_OPTIONS: tuple[str, ...] = (
    "later appointment times",
    "a quiet space to wait",
    "a shorter appointment",
)
"""Reasonable adjustments offered by default, written to follow "We can offer you"."""

# GSM 03.38 default alphabet and its extension table (extension characters take two septets).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")
_TYPOGRAPHY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                             "\u2014": "-", "\u00a0": " ", "\u2026": "..."})
_PRACTICE_NAME_MAX = 60


@dataclass(frozen=True)
class Invitation:
    """One patient's invitation.

    ``checks_due`` are the names of the checks to offer, as printed (``invitation_from_record``
    gives plain names); ``number`` is 1 for the first invitation and 2 for the second (DNA protocol);
    ``options`` are the adjustments offered, each to follow "We can offer you"; ``reply_instructions``
    replaces the default "how to book" text. Names are optional: the canonical extract has none,
    and a letter without them is addressed "Dear patient".
    """

    nhs_number: str
    checks_due: tuple[str, ...] = ()
    number: int = 1
    family_name: str | None = None
    given_name: str | None = None
    options: tuple[str, ...] = DEFAULT_OPTIONS
    reply_instructions: str | None = None

    def __post_init__(self) -> None:
        if self.number not in (1, 2):
            raise ValueError("invitation number must be 1 (first) or 2 (second, after a missed first)")


def invitation_from_record(record: PatientRecord, *, number: int = 1,
                           options: Sequence[str] = DEFAULT_OPTIONS) -> Invitation:
    """An invitation for every check of ``record`` that is not done on its ``as_of`` (plain names,
    as in the passport), or all of its checks when every one is done (the yearly recall)."""
    missing = [s for s in record.checks if s.status != "done"] or record.checks
    names = tuple(ABOUT[s.check_id].name if s.check_id in ABOUT else s.label for s in missing)
    return Invitation(nhs_number=record.nhs_number, checks_due=names, number=number, options=tuple(options))


def _greeting(inv: Invitation) -> str:
    name = " ".join(p.strip() for p in (inv.given_name, inv.family_name) if p and p.strip())
    return f"Dear {name}" if name else "Dear patient"


def _letters(invitations: Iterable[Invitation]) -> list[dict[str, Any]]:
    return [{
        "greeting": _greeting(inv),
        "nhs_number": format_nhs_number(inv.nhs_number),
        "checks": list(inv.checks_due),
        "second": inv.number == 2,
        "options": list(inv.options),
        "reply": inv.reply_instructions,
    } for inv in invitations]


def render_invitation_html(invitations: Sequence[Invitation], *, practice_name: str, practice_code: str,
                           generated_on: date) -> str:
    """The batch of letters as one HTML document, one A4 page per invitation when printed. Free text is escaped."""
    if not invitations:
        raise ValueError("no invitations to print")
    return environment().get_template("invitation.html").render(
        letters=_letters(invitations), practice_name=practice_name, practice_code=practice_code,
        letter_date=long_date(generated_on), created=generated_on.isoformat(),
    )


def render_invitation_pdf(invitations: Sequence[Invitation], *, practice_name: str, practice_code: str,
                          generated_on: date) -> bytes:
    """The batch of letters as A4 PDF bytes, one page per invitation, in the order given."""
    return html_to_pdf(render_invitation_html(invitations, practice_name=practice_name, practice_code=practice_code,
                                              generated_on=generated_on))


# -- SMS ----------------------------------------------------------------------------------------------


def sms_length(text: str) -> int:
    """Length of ``text`` in GSM 7-bit septets (extension characters count two). Raises ValueError
    when ``text`` has a character outside the GSM alphabet (it would be sent as UCS-2)."""
    length = 0
    for ch in text:
        if ch in _GSM_BASIC:
            length += 1
        elif ch in _GSM_EXTENDED:
            length += 2
        else:
            raise ValueError(f"character U+{ord(ch):04X} is not in the GSM 7-bit alphabet")
    return length


def _gsm(text: str) -> str:
    """``text`` reduced to the GSM basic alphabet: typographic quotes and dashes made plain, accents
    removed where the GSM alphabet lacks the letter, anything else dropped; spaces collapsed."""
    out = []
    for ch in text.translate(_TYPOGRAPHY):
        if ch in _GSM_BASIC and ch not in "\r\n":
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch)[:1]
        if base in _GSM_BASIC and base not in "\r\n":
            out.append(base)
        elif ch.isspace():
            out.append(" ")
    return " ".join("".join(out).split())


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def sms_text(invitation: Invitation, *, practice_name: str) -> str:
    """The invitation as an SMS of at most 306 GSM characters (2 segments).

    No NHS number, no name, no clinical details beyond "your yearly physical health check". The
    adjustments offered, then the "had it elsewhere" line, are left out if the text would not fit.
    """
    practice = _gsm(practice_name) or "Your GP practice"
    if len(practice) > _PRACTICE_NAME_MAX:
        practice = practice[:_PRACTICE_NAME_MAX - 3].rstrip() + "..."
    if invitation.number == 2:
        opening = (f"From {practice}: we wrote to you about your yearly physical health check. "
                   "We have not heard from you. Please call us to book a time that suits you.")
    else:
        opening = (f"From {practice}: it is time for your yearly physical health check. "
                   "Please call us to book a time that suits you.")
    options = [o for o in (_gsm(o) for o in invitation.options) if o]
    offer = f"We can offer {_join(options)}." if options else ""
    elsewhere = "If you had this check somewhere else, please let us know."
    # Longest first: the offer (a practice's own list may be long) goes before the "elsewhere" line.
    for parts in ((opening, offer, elsewhere), (opening, elsewhere)):
        text = " ".join(p for p in parts if p)
        if sms_length(text) <= SMS_MAX:
            return text
    return opening  # the practice name is capped, so the opening alone always fits


def sms_export_csv(invitations: Iterable[Invitation], practice_name: str) -> str:
    """CSV with columns ``nhs_number`` and ``message`` for the practice's own messaging system,
    which matches each NHS number to a phone number (RFC 4180: CRLF line ends, quoted as needed)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["nhs_number", "message"])
    for inv in invitations:
        writer.writerow([inv.nhs_number.replace(" ", ""), sms_text(inv, practice_name=practice_name)])
    return buf.getvalue()
