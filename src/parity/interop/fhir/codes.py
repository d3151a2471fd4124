"""Systems, codes and fixed wording of the Parity check Bundle (UK Core R4, interop-and-peers.md §2.1).

Shared by building (``build``) and reading (``read``) so both sides speak the same systems and codes.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

# -- systems and codes (interop-and-peers.md §2.1, "Identifiers and systems") ----------------------
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
UKCORE = "https://fhir.hl7.org.uk/StructureDefinition/"
NHS_VERIFICATION_EXTENSION = UKCORE + "Extension-UKCore-NHSNumberVerificationStatus"
NHS_VERIFICATION_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
URI_SYSTEM = "urn:ietf:rfc:3986"

#: The UK Core blood pressure panel and its two components (UKCore-Observation-VitalSigns-BloodPressure,
#: interop-and-peers.md §2.1); the trust template uses the same codes (tests/interop/test_fhir.py checks).
BP_PANEL = 75367002
BP_SYSTOLIC = 72313002
BP_DIASTOLIC = 1091811000000102

OBSERVATION_STATUSES = ("final", "amended", "corrected")
# One check per Bundle: a collection (Parity's own), a FHIR message (MessageHeader first) or a document.
BUNDLE_TYPES = ("collection", "message", "document")
LETTER_DESCRIPTION = "Physical health check letter"
LETTER_TITLE = "Physical health check letter"
MAX_PROBLEMS = 200

_CATEGORY_DISPLAY = {
    "vital-signs": "Vital Signs", "laboratory": "Laboratory", "social-history": "Social History",
    "survey": "Survey", "procedure": "Procedure", "exam": "Exam",
}
_GENDER = {"male": "male", "female": "female", "intersex": "other", "unknown": "unknown"}
# Both ends of the link are in England: "today" is the date in London, not the server's UTC date
# (a check done at 00:30 BST would otherwise be "in the future" on a UTC server).
_LONDON = ZoneInfo("Europe/London")

