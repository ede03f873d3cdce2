"""Event studies: treatment x event-year TWFE with a reference year and pre-trend tests
(``twfe``).
"""

from models import lazy_entry_points

ENTRY_POINTS = {
    "EventStudyFit": "twfe",
    "fit_event_study": "twfe",
    "plot_event_study": "twfe",
    "treatment_indicator": "twfe",
}
__all__ = sorted(ENTRY_POINTS)
__getattr__, __dir__ = lazy_entry_points(__name__, ENTRY_POINTS)
