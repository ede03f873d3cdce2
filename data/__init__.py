"""Data contracts, loaders, calibrated synthetic panels and published tables."""
