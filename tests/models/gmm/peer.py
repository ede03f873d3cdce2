"""pydynpd (``abond``) as the peer of the dynamic-panel GMM tests."""

from __future__ import annotations

import builtins
import contextlib
import io
import types

import numpy as np
import pandas as pd
import pytest


def pydynpd_model(command: str, frame: pd.DataFrame, identifiers: list[str], monkeypatch):
    """pydynpd's abond, with shims for the NumPy 2 calls it still makes (in1d, float of 1x1)."""
    regression = pytest.importorskip("pydynpd.regression")
    import pydynpd.panel_data as panel_data
    import pydynpd.specification_tests as spec_tests

    if not hasattr(np, "in1d"):
        monkeypatch.setattr(panel_data.np, "in1d", np.isin, raising=False)
    monkeypatch.setattr(spec_tests, "float",
                        lambda v: builtins.float(np.asarray(v).item()), raising=False)
    monkeypatch.setattr(spec_tests, "math",
                        types.SimpleNamespace(sqrt=lambda v: np.sqrt(np.asarray(v).item())))
    # pydynpd needs rows sorted by unit and period and adds helper columns to its input.
    data = frame.sort_values(identifiers).reset_index(drop=True).copy()
    with contextlib.redirect_stdout(io.StringIO()):
        return regression.abond(command, data, identifiers).models[0]


def assert_matches_pydynpd(ours, theirs, rename=lambda t: t, tol: float = 1e-6) -> None:
    """Coefficients, standard errors, Hansen J, AR tests, observations and instruments."""
    table = theirs.regression_table.set_index("variable")
    mine = dict(zip(ours.terms, zip(ours.beta, ours.std_errors, strict=True), strict=True))
    assert len(table) == len(mine)
    for name, row in table.iterrows():
        term = rename(str(name))
        assert mine[term][0] == pytest.approx(row["coefficient"], abs=tol), term
        assert mine[term][1] == pytest.approx(row["std_err"], abs=tol), term
    assert ours.hansen[0] == pytest.approx(theirs.hansen.test_value, abs=tol)
    assert ours.hansen[1] == theirs.hansen.df
    for ar in theirs.AR_list:
        assert ours.ar[ar.lag][0] == pytest.approx(ar.AR, abs=tol)
    assert ours.n_obs_diff == theirs.num_obs
    assert ours.n_instruments == theirs.z_information.num_instr
