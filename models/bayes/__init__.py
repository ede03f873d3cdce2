"""What every posterior of the project shares: the prior grammar and the panel priors, the
nutpie runner and trace conversion, convergence checks, provenance, saving and loading, the
summary row, power-scaling sensitivity, the fused-Op base and the posterior-fit base class.
"""

from models import lazy_entry_points

ENTRY_POINTS = {
    "PosteriorFit": "fit",
    "Prior": "priors",
    "PriorSpecError": "priors",
    "parse_prior": "priors",
    "PanelPriors": "panel_priors",
    "DataScales": "panel_priors",
    "load_priors_toml": "panel_priors",
    "convergence_messages": "convergence",
    "RHAT_MAX": "convergence",
    "ESS_MIN": "convergence",
    "power_scaling_table": "sensitivity",
    "summary_row": "summary",
    "HDI_PROB": "summary",
    "sample_model": "sampler",
    "run_nutpie": "sampler",
    "package_versions": "provenance",
    "load_posterior": "storage",
}
__all__ = sorted(ENTRY_POINTS)
__getattr__, __dir__ = lazy_entry_points(__name__, ENTRY_POINTS)
