"""Prior sensitivity of a study's Bayesian specifications: the power-scaling sequence and
diagnosis, and refits under a grid of alternative priors (``python -m inference sensitivity``).
"""

from inference.sensitivity.run import SensitivityOptions, run_sensitivity

__all__ = ["SensitivityOptions", "run_sensitivity"]
