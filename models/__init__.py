"""Statistical models: each frequentist estimator beside its Bayesian counterpart."""
