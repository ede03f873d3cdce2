"""Two-way fixed-effects panel regression: the within estimator (``fe``) and its hierarchical
Bayesian counterpart (``bayes``, on the design in ``design``, the graph in ``model``, the
compile cache in ``compiled``, and the marginal and collapsed likelihoods with their Ops).
"""

from models import lazy_entry_points

ENTRY_POINTS = {
    "PanelFit": "fe",
    "fit_twfe": "fe",
    "partial_out": "fe",
    "BayesPanelFit": "bayes",
    "fit_bayes_twfe": "bayes",
    "conjugate_twfe_draws": "bayes",
    "PanelDesign": "design",
    "prepare_panel": "design",
    "build_twfe_model": "model",
}
__all__ = sorted(ENTRY_POINTS)
__getattr__, __dir__ = lazy_entry_points(__name__, ENTRY_POINTS)
