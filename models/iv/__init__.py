"""Instrumental variables with absorbed effects: panel 2SLS with its first stages (``tsls``),
the identification and over-identification tests (``diagnostics``), and the Bayesian model
with correlated first-stage and outcome errors (``bayes``).
"""

from models import lazy_entry_points

ENTRY_POINTS = {
    "IVFit": "tsls",
    "fit_panel_iv": "tsls",
    "RankTest": "diagnostics",
    "hansen_j": "diagnostics",
    "kleibergen_paap": "diagnostics",
    "stock_yogo_critical_value": "diagnostics",
    "BayesIVFit": "bayes",
    "IVPriors": "bayes",
    "fit_bayes_iv": "bayes",
}
__all__ = sorted(ENTRY_POINTS)
__getattr__, __dir__ = lazy_entry_points(__name__, ENTRY_POINTS)
