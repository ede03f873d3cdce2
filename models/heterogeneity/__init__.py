"""Subgroup heterogeneity: the interacted TWFE (``interacted``) and group-varying slopes under
partial pooling (``bayes``, with its priors, model graph and the slopes integrated out in
``collapsed_slopes``).
"""

from models import lazy_entry_points

ENTRY_POINTS = {
    "InteractedFit": "interacted",
    "build_group_design": "interacted",
    "fit_interacted_twfe": "interacted",
    "BayesHeterogeneityFit": "bayes",
    "fit_bayes_heterogeneity": "bayes",
    "HeterogeneityPriors": "priors",
}
__all__ = sorted(ENTRY_POINTS)
__getattr__, __dir__ = lazy_entry_points(__name__, ENTRY_POINTS)
