"""Reporting on top of the engine: disclosure control, formatting and (later) trends and inequalities."""
