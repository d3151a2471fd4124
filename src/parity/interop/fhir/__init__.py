"""The FHIR R4 UK Core Bundle that carries one completed check from a trust to the GP practice.

``build.build_bundle`` turns a ``CheckRecord`` into Bundle JSON (``fhir.resources`` R4B models, as
fhir.resources has no R4 module: dependencies.md pitfall 6); ``read.parse_bundle`` reads one back on
the practice side; ``read.check_bundle`` holds the project's own rules that the models do not enforce
(profiles, code systems, NHS number check digit, one patient, one date, one trust); ``codes`` holds the
systems and codes both sides use.
"""

from __future__ import annotations

from parity.interop.fhir.build import build_bundle
from parity.interop.fhir.read import BundleError, ReceivedCheck, ReceivedItem, check_bundle, parse_bundle

__all__ = ["BundleError", "ReceivedCheck", "ReceivedItem", "build_bundle", "check_bundle", "parse_bundle"]
