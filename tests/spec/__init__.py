"""Spec tests: one small patient timeline and the expected answer per counting rule (see README.md)."""
