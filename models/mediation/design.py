"""The data of the Bayesian mediation model: validated, two-way demeaned, as cross-products.

Every variable of the system (outcome y, mediators m_1..m_K, treatment x, controls w) is
two-way demeaned with :func:`models.panel.design.prepare_panel`, the within half of the
orthogonal within/between split of the Bayesian TWFE. The model's likelihood depends on the
data only through the cross-product matrix of the demeaned columns ``[y, m_1..m_K, x, w]``
(:mod:`models.mediation.model`), so a gradient costs O(p^2 K) whatever the panel size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.panel.design import demeaned_system, prepare_panel

# Parameter names of the model: a mediator or outcome column may not take one of them.
RESERVED = ("a", "b", "direct", "total", "indirect", "share_mediated", "sigma_outcome",
            "sigma_mediator", "mediator_corr", "rho", "control_outcome", "control_mediator")


@dataclass(frozen=True)
class MediationDesign:
    """Two-way demeaned variables of the mediation system and their cross-products.

    ``data`` columns are [y, m_1..m_K, x, w_1..w_c] after demeaning; ``gram`` = data'data.
    ``raw_sd`` / ``within_sd``: standard deviations before and after demeaning, by column.
    ``raw``: the same columns before demeaning, with the unit and year codes of every row.
    """

    outcome: str
    treatment: str
    mediators: tuple[str, ...]
    controls: tuple[str, ...]
    data: np.ndarray
    gram: np.ndarray
    raw_sd: dict[str, float]
    within_sd: dict[str, float]
    n_obs: int
    fe_rank: int
    data_hash: str
    n_units: int
    n_years: int
    raw: np.ndarray = field(repr=False)
    unit_idx: np.ndarray = field(repr=False)
    time_idx: np.ndarray | None = field(repr=False)

    @property
    def n_effective(self) -> int:
        """Observations left after the effects are integrated out (n less their rank)."""
        return self.n_obs - self.fe_rank

    @property
    def names(self) -> list[str]:
        return [self.outcome, *self.mediators, self.treatment, *self.controls]

    def column(self, name: str) -> int:
        return self.names.index(name)


def prepare_mediation(
    df: pd.DataFrame,
    outcome: str,
    treatment: str,
    mediators: Sequence[str],
    controls: Sequence[str] = (),
    unit: str = "unit",
    time: str | None = None,
) -> MediationDesign:
    """Validate and two-way demean the mediation system.

    Raises
    ------
    ValueError
        Naming the column or rule: no mediator, a name used twice or in two roles, a name that
        clashes with a model parameter, missing or non-numeric columns, missing values, a
        variable without within variation, collinear regressors.
    """
    mediators = [mediators] if isinstance(mediators, str) else [str(m) for m in mediators]
    controls = [controls] if isinstance(controls, str) else [str(c) for c in controls]
    if not mediators:
        raise ValueError("A mediation model needs at least one mediator (option 'mediators').")
    roles = {"outcome": [outcome], "treatment": [treatment], "mediators": mediators,
             "controls": controls}
    seen: dict[str, str] = {}
    for role, names in roles.items():
        for name in names:
            if name in seen:
                where = role if seen[name] == role else f"{seen[name]} and {role}"
                raise ValueError(f"Column {name!r} is listed more than once ({where}); each "
                                 "variable takes one role in the mediation model.")
            seen[name] = role
    taken = [n for n in [outcome, *mediators] if n in RESERVED]
    if taken:
        raise ValueError(f"Column {taken[0]!r} clashes with a parameter name of the mediation "
                         "model; rename it.")
    panel = prepare_panel(df, outcome, [*mediators, treatment, *controls], unit, time)
    fields = demeaned_system(panel, [outcome, *mediators, treatment, *controls])
    y_within_sd = fields["data"][:, 0].std()
    if y_within_sd <= 1e-9 * max(float(panel.y.std()), 1e-300) or y_within_sd == 0:
        raise ValueError(f"Outcome {outcome!r} has no variation left after removing the unit "
                         "and year effects.")
    return MediationDesign(outcome=outcome, treatment=treatment, mediators=tuple(mediators),
                           controls=tuple(controls), **fields)
