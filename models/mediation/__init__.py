"""Mediation analysis: the three-step regressions with the Sobel test and a cluster bootstrap
of the indirect effect (``three_step``), and the Bayesian joint model of mediator(s) and outcome
with its sensitivity to mediator-outcome confounding (``bayes``, ``model``, ``priors``,
``design``, ``sensitivity``).
"""

from models import lazy_entry_points

ENTRY_POINTS = {
    "MediationFit": "three_step",
    "fit_mediation": "three_step",
    "sobel_test": "three_step",
    "bootstrap_indirect": "three_step",
    "BayesMediationFit": "bayes",
    "fit_bayes_mediation": "bayes",
    "MediationPriors": "priors",
    "prepare_mediation": "design",
    "sensitivity_curve": "sensitivity",
}
__all__ = sorted(ENTRY_POINTS)
__getattr__, __dir__ = lazy_entry_points(__name__, ENTRY_POINTS)
