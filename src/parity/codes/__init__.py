"""SNOMED CT codelists shipped as package data, each with its provenance.

A measure names clusters (``BP_COD``, ``MH_COD``, ...); this package turns a name into the set of
concept ids, and says where the list came from:

- ``pcd``: an NHS Digital Primary Care Domain refset as published on OpenCodelists;
- ``substitute``: a real published list standing in for a refset with no public file
  (``MHREM_COD`` is PRIMIS SMHRES);
- ``local``: curated by Parity, every code with a note naming its public source.

Provenance of every file: ``codes/data/SOURCES.md``. Nothing is read until first use.

    >>> from parity.codes import load_codelist
    >>> 75367002 in load_codelist("BP_COD")
    True
"""

from parity.codes.model import KINDS, Code, Codelist
from parity.codes.registry import UnknownClusterError, codes_for, list_clusters, load_codelist, term_for
from parity.codes.sctid import is_concept_id

__all__ = [
    "KINDS",
    "Code",
    "Codelist",
    "UnknownClusterError",
    "codes_for",
    "is_concept_id",
    "list_clusters",
    "load_codelist",
    "term_for",
]
