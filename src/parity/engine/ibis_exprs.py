"""Small Ibis expression helpers the Ibis engine's modules share (no clinical content)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir


@ibis.udf.agg.builtin
def bit_or(mask: int) -> int:  # type: ignore[empty-body]
    """SQL's ``bit_or`` aggregate, spelled the same in DuckDB, PostgreSQL and Spark SQL (Ibis 12's
    PySpark compiler has no rule for its own ``bit_or``)."""


def day(d: date) -> ir.DateScalar:
    """``d`` as a SQL date literal."""
    return ibis.literal(d, type="date")


def flag(expr: ir.BooleanValue) -> ir.BooleanValue:
    """SQL's unknown counts as false, as a missing date does in the rules."""
    return expr.fill_null(False)


def count(expr: Any) -> Any:
    """How many rows ``expr`` holds for (an aggregate)."""
    return ibis.ifelse(expr, 1, 0).cast("int32").sum()


def temp_name() -> str:
    """A fresh name for an intermediate table."""
    return f"_parity_ibis_{uuid.uuid4().hex[:12]}"
