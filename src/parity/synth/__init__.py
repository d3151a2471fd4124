"""Synthetic population: people with SMI on the registers of real practices, as a canonical extract.

``generate(out, scale=..., area=..., patients=..., seed=...)`` writes ``patients``,
``registrations``, ``events`` and ``medications`` (CSV or Parquet) with three years of history up
to a reporting date. The model and its calibration are described in ``README.md`` beside this file.
"""

from parity.synth.generator import SynthSummary, default_as_of, generate

__all__ = ["SynthSummary", "default_as_of", "generate"]
