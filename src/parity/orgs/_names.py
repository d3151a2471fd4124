"""Consistent casing of NHS organisation names.

The sources disagree on case: the 2026 NHS England mapping file writes practice and PCN names in
capitals ("ST GEORGE'S MEDICAL CENTRE"), the 2022-23 QOF mapping file runs them through a naive
title case ("St George'S Medical Centre", "Bmc Paston PCN"), and ICB, sub-ICB and region names are
mixed case in both ("NHS Hampshire and Isle Of Wight ICB - 10R" in 2022-23). ``tidy_name`` maps all
of them to one style, working from the upper-cased text so that the same official name gives the
same tidy name whichever file it came from. It changes case and collapses whitespace only: no
words are added, removed or expanded.

Rules, in order, for each run of letters and digits:

* after an apostrophe, one or two letters are lower case ("George's"), longer runs capitalised
  ("O'Brien");
* with digits: ordinals lower-case their suffix ("4th"); runs with at most three letters stay upper
  case (postcode districts "LS25", ODS codes "D4U1Y", "PCN5"); otherwise each letter run is
  capitalised ("Together4Healthcare");
* known acronyms stay upper case (``ACRONYMS``), known abbreviations are capitalised ("Dr", "St",
  "Ctr", "Ltd");
* words without a vowel (A E I O U Y) are acronyms ("NHS", "PCN", "BNSSG"), single letters are
  initials ("Dr S Patel"), and one or two letters straight after "Dr"/"Drs" are initials too;
* a single word alone in brackets of up to five letters is an acronym ("(IW)", "(KIWY)"), and one
  or two letters opening a bracket before more words are initials ("(SA Bailey)");
* "and", "of", "the", "on", "upon", "in", "at", "by", "for", "with", "under", "to", "le", "de",
  "la", "en" are lower case unless they start the name, a bracket or a " - " clause;
* "Mc" names keep the capital after the prefix ("McKenzie");
* everything else is capitalised.

It is a best effort for display: the ODS codes, not the names, identify organisations.
"""

from __future__ import annotations

import re

ACRONYMS: frozenset[str] = frozenset({
    "ABC", "ACF", "AIC", "APL", "APMS", "ARG", "ASOP", "CHOC", "CIC", "EMC", "GMS", "GOSK", "GP",
    "GPS", "HASP", "HIP", "HIPC", "HMP", "ICB", "ICO", "ICS", "IGPC", "IMP", "IOW", "IW", "LIGA",
    "LLP", "LOCC", "MPA", "NEL", "NHS", "OCH", "OOH", "PCCO", "PCN", "PMS", "PWE", "SAPA", "SAS",
    "SE", "SHU", "TABA", "UEA", "UHPC", "UK", "UOS", "WACA",
})
ABBREVIATIONS: frozenset[str] = frozenset({
    "BLVD", "CNT", "CNTR", "CTR", "CTRS", "DR", "DRS", "GRP", "HLTH", "HTH", "JNR", "LTD", "MR",
    "MRS", "PL", "PRT", "PTNR", "PTNRS", "RD", "SNR", "SPCL", "SQ", "ST",
})
SMALL_WORDS: frozenset[str] = frozenset({
    "AND", "OF", "THE", "ON", "UPON", "IN", "AT", "BY", "FOR", "WITH", "UNDER", "TO", "LE", "DE",
    "LA", "EN",
})

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_ORDINAL = re.compile(r"^(\d+)(ST|ND|RD|TH)$")
_VOWEL = re.compile(r"[AEIOUY]")
_RUNS = re.compile(r"[A-Z]+|[0-9]+")


def _capitalise(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


def _starts_clause(before: str) -> bool:
    """True if the text before a word ends a clause: start, "(" or a spaced " - "."""
    stripped = before.rstrip()
    if not stripped:
        return True
    if stripped.endswith("("):
        return True
    return stripped.endswith("-") and before.endswith(" ") and stripped[:-1].endswith(" ")


def _tidy_token(word: str, text: str, start: int, end: int, previous: str | None) -> str:
    before = text[:start]
    after = text[end:]
    if before.endswith("'") and len(before) > 1 and before[-2].isalpha():
        return word.lower() if len(word) <= 2 else _capitalise(word)
    if any(ch.isdigit() for ch in word):
        ordinal = _ORDINAL.match(word)
        if ordinal:
            return ordinal.group(1) + ordinal.group(2).lower()
        if sum(ch.isalpha() for ch in word) <= 3:
            return word
        return "".join(_capitalise(run) for run in _RUNS.findall(word))
    if word in ACRONYMS:
        return word
    if word in ABBREVIATIONS:
        return _capitalise(word)
    if len(word) == 1 or not _VOWEL.search(word):
        return word
    if previous in ("DR", "DRS") and len(word) <= 2:
        return word
    if before.endswith("(") and after.startswith(")") and len(word) <= 5:
        return word
    if before.endswith("(") and after.startswith(" ") and len(word) <= 2:
        return word
    if word in SMALL_WORDS and not _starts_clause(before):
        return word.lower()
    if word.startswith("MC") and len(word) > 3 and _VOWEL.search(word[2:]):
        return "Mc" + _capitalise(word[2:])
    return _capitalise(word)


def tidy_name(name: str) -> str:
    """One consistent casing for an organisation name (see the module docstring for the rules)."""
    text = " ".join(str(name).split()).upper()
    parts: list[str] = []
    pos = 0
    previous: str | None = None
    for match in _TOKEN.finditer(text):
        parts.append(text[pos:match.start()])
        parts.append(_tidy_token(match.group(), text, match.start(), match.end(), previous))
        previous = match.group()
        pos = match.end()
    parts.append(text[pos:])
    return "".join(parts)
