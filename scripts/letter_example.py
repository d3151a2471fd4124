"""Render the example trust-to-GP letter shown in the README (``docs/letter-example.png``).

Every value is synthetic: a made-up patient whose NHS number, 900 000 0009, lies in the range
9000000000-9999999999 that is never issued (synthetic/test patients, per the ``nhs-number`` package's
ranges) and has a valid mod-11 check digit. Needs ``pdftoppm`` (poppler-utils).

    .venv/bin/python scripts/letter_example.py [--pdf out.pdf]
"""
# A stand-alone script, not a package module (pyproject's per-file-ignores has no scripts/ entry yet).

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path

from parity.interop.letters import render_letter_pdf
from parity.interop.record import CheckRecord, record_from_form
from parity.rules.template import load_template

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "letter-example.png"


def example_record() -> CheckRecord:
    """A realistic check: raised BP, at-risk HbA1c, current smoker, alcohol declined, lipids done."""
    form = {
        "nhs_number": "9000000009",
        "date_of_birth": "1979-03-07",
        "family_name": "Smith",
        "given_name": "Jane",
        "sex": "female",
        "practice_code": "H85001",
        "performed_on": "2026-11-24",
        "performed_by": "Alex Morgan, Physical Health Nurse (Band 6)",
        "bmi.weight": "84.2",
        "bmi.height": "165",
        "blood_pressure.systolic": "150",
        "blood_pressure.diastolic": "85",
        "lipids.total_cholesterol": "5.4",
        "lipids.hdl": "1.1",
        "glucose.hba1c": "44",
        "alcohol.status": "declined",
        "alcohol.reason": "did not want to discuss today",
        "smoking.smoking_status": "77176002",
        "pulse.pulse_rate": "88",
        "medication_review.medication_review_done": "182836005",
        "narrative": (
            "Seen at the community mental health team clinic. Jane is on olanzapine 10 mg at night and "
            "reports weight gain of about 6 kg this year. She is interested in cutting down smoking and "
            "was given very brief advice. Bloods taken on the day."
        ),
        "follow_up": "Please repeat blood pressure within 4 weeks. Jane prefers appointments after 11:00.",
    }
    return record_from_form(load_template(), form, trust_code="RX2", created_by="example",
                            today=date(2026, 11, 27), check_id="5f0c7a52-6a8e-4c55-9d1b-2f8e1f3a9b10")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, help="also keep the PDF here")
    parser.add_argument("--out", type=Path, default=OUT, help=f"PNG to write (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm not found: apt-get install poppler-utils")
    pdf = render_letter_pdf(example_record(), load_template(), practice_name="Riverside Medical Centre",
                            trust_name="Sussex Partnership NHS Foundation Trust",
                            generated_at=datetime(2026, 11, 27, 9, 30))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "letter.pdf"
        src.write_bytes(pdf)
        if args.pdf:
            args.pdf.write_bytes(pdf)
        # -singlefile writes <root>.png for page 1 only; 70 dpi keeps the README image small.
        subprocess.run(["pdftoppm", "-png", "-r", "70", "-f", "1", "-singlefile", str(src), str(Path(tmp) / "page")],
                       check=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "page.png", args.out)
    sys.stdout.write(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
