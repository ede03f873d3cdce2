"""Event studies: treatment x event-year TWFE with a reference year and pre-trend tests
(``twfe``), its Bayesian counterpart with priors on the event-time path (``bayes``,
``path_priors``), posterior summaries and relative-magnitude sensitivity (``summaries``) and
the combined figure (``plot``), and honest confidence sets of the frequentist coefficients
under bounded violations of parallel trends (``honest``, with the moment-inequality test in
``arp``).
"""

from models import lazy_entry_points

ENTRY_POINTS = {
    "BayesEventStudyFit": "bayes",
    "EventPathPrior": "path_priors",
    "EventStudyFit": "twfe",
    "conditional_cs_delta_rm": "honest",
    "flci_delta_sd": "honest",
    "sensitivity_results": "honest",
    "fit_bayes_event_study": "bayes",
    "plot_event_paths": "plot",
    "post_summaries": "summaries",
    "pretrend_probability": "summaries",
    "relative_magnitude_bounds": "summaries",
    "fit_event_study": "twfe",
    "plot_event_study": "twfe",
    "treatment_indicator": "twfe",
}
__all__ = sorted(ENTRY_POINTS)
__getattr__, __dir__ = lazy_entry_points(__name__, ENTRY_POINTS)
