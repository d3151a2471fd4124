"""Moved to ``parity.engine.results`` (the engine's results cache now lives below care, interop and
reports, which all read it). This name keeps working for the web app, tests and benchmarks."""

from parity.engine.results import *  # noqa: F403
from parity.engine.results import __all__  # noqa: F401
