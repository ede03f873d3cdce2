"""Mediation truth of the SYNTHETIC zhu2025 panel: ln GDP through secondary-sector output and
secondary employment, the paper's stated channels (see :mod:`data.synthetic.zhu2025` for the
data-generating process)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.synthetic.within import alternating_demean, codes, twfe_first_coef, within_columns

MEDIATION_CHANNELS = ("ln_gdp_sec", "ln_emp_sec")


def mediation_truth(frame: pd.DataFrame, noise_free: dict[str, np.ndarray],
                    controls: tuple[str, ...]) -> dict:
    """The paper's stated channels (ln GDP on M_firms through secondary output and
    employment): every outcome is generated from the AI measure directly, ln_gdp from neither
    mediator, so the true indirect effects are 0. Beside them, what the regressions estimate
    on the noise-free outcomes: the a paths (TWFE slope of each noise-free mediator on m_firms
    and the controls) and the b paths (slopes of the noise-free ln_gdp on the observed
    mediators, with m_firms and the controls), which the shared income-group slope
    heterogeneity can move away from 0."""
    controls = list(controls)
    a = {m: twfe_first_coef(frame, noise_free[m], ["m_firms", *controls])
         for m in MEDIATION_CHANNELS}
    regressors = ["m_firms", *MEDIATION_CHANNELS, *controls]
    x_w = within_columns(frame, regressors)
    y_w = alternating_demean(noise_free["ln_gdp"], codes(frame["city"]), codes(frame["year"]))[:, 0]
    coef = np.linalg.lstsq(x_w, y_w, rcond=None)[0]
    b = {m: float(coef[1 + j]) for j, m in enumerate(MEDIATION_CHANNELS)}
    return {
        "outcome": "ln_gdp",
        "treatment": "m_firms",
        "mediators": list(MEDIATION_CHANNELS),
        "indirect": {m: 0.0 for m in MEDIATION_CHANNELS},
        "note": "ln_gdp is generated without either mediator: true indirect effects are 0",
        "a_noise_free": a,
        "b_noise_free": b,
        "indirect_noise_free": {m: a[m] * b[m] for m in MEDIATION_CHANNELS},
    }
