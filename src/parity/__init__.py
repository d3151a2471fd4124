"""Parity: annual physical health checks for people with severe mental illness (SMI).

The package is organised by concept (see README "Architecture"): ``codes`` (codelists),
``orgs`` (organisation hierarchy), ``rules`` (clinical content, no SQL), ``engine`` (runs rules),
``ingest`` (canonical extract), ``db`` (database connections and schema), ``reports``
(aggregation and disclosure control), ``synth`` (synthetic population) and ``cli``.
"""

__version__ = "0.1.0"
