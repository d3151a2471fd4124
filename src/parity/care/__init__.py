"""Care of the people on the register (mission features M5, M6, M9): recall and contacts, the DNA
protocol, worklists ranked by expected gain, follow-up of what a check finds, and the patient passport.

State users create (contacts, referrals) is stored as append-only events; current state is a query
over them. This package never imports ``parity.web``.
"""
