"""Panel threshold regression: Hansen's (1999) least-squares search and bootstrap tests
(``hansen``, ``search``, ``bootstrap``), the Bayesian model with the thresholds marginalised
exactly over his grid (``bayes`` and the modules it builds on), and the smooth-transition
model (``smooth_transition``).
"""

from models import lazy_entry_points

ENTRY_POINTS = {
    "ThresholdResult": "hansen",
    "fit_panel_threshold": "hansen",
    "lr_critical_value": "hansen",
    "BayesThresholdFit": "bayes",
    "fit_bayes_threshold": "bayes",
    "compare_threshold_counts": "bayes",
    "SmoothTransitionFit": "smooth_transition",
    "fit_smooth_transition": "smooth_transition",
}
__all__ = sorted(ENTRY_POINTS)
__getattr__, __dir__ = lazy_entry_points(__name__, ENTRY_POINTS)
