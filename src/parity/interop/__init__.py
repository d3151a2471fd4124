"""Trust-to-GP sharing (mission feature M4): one check template, a letter and a FHIR Bundle per
completed check, sent over MESH and filed into the practice record exactly once.

- ``record``: a completed check (``CheckRecord``), validated against the template in ``parity.rules``;
- ``fhir``: the UK Core R4 Bundle (``fhir.resources`` R4B models), built, checked and read back;
- ``letters``: the PDF letter to the GP (weasyprint), summary table first;
- ``mesh``: mailbox directory, outbox with tracked states and retries, inbox polling and filing.

This package never imports ``parity.web``.
"""
