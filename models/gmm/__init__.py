"""Dynamic panels by GMM: difference and system GMM, one- or two-step with Windmeijer errors,
Arellano-Bond, Hansen and Sargan tests (``estimate``), on the equations and instruments that
``xtabond2`` builds (``design``).
"""

from models import lazy_entry_points

ENTRY_POINTS = {
    "Design": "design",
    "build_design": "design",
    "DynamicGMMFit": "estimate",
    "SystemGMMFit": "estimate",
    "fit_dynamic_gmm": "estimate",
    "fit_system_gmm": "estimate",
}
__all__ = sorted(ENTRY_POINTS)
__getattr__, __dir__ = lazy_entry_points(__name__, ENTRY_POINTS)
