"""Clinical content: the SMI register, the checks and the measures, as data.

Nothing here knows SQL or does I/O beyond reading the package's own measure files. The engine
(``parity.engine``) runs these definitions; see ``model.py`` for the vocabulary.
"""

from parity.rules.model import (
    CORE_CHECKS,
    Check,
    Criterion,
    LowerRiskWindow,
    Measure,
    PersonalisedCareAdjustment,
    Register,
    Window,
)
from parity.rules.registry import list_measures, load_measure

__all__ = [
    "CORE_CHECKS",
    "Check",
    "Criterion",
    "LowerRiskWindow",
    "Measure",
    "PersonalisedCareAdjustment",
    "Register",
    "Window",
    "list_measures",
    "load_measure",
]
