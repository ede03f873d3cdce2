"""Measures built from a study's raw columns (shift-share exposure, concentration indices)."""
