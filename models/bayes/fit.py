"""The posterior-fit base: what every fitted Bayesian model of the project holds and does.

A fit holds the InferenceData and the provenance saved with it (spec, priors, data hash, seed,
package versions, wall times; :mod:`models.bayes.provenance`), summarises its posterior as one
row per term (``tidy``, cached: a summary costs R-hat and ESS per term), counts divergent
transitions and checks convergence in words (:class:`models.bayes.convergence.
ConvergenceChecked`), and writes itself to netCDF (:mod:`models.bayes.storage`). A family adds
its terms (``_build_tidy``), any extra provenance (``extra_attributes``), its own quantities and,
where the model recomputes them exactly, the variables its file leaves out
(``recomputed_on_load`` and ``restore``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from models.bayes.convergence import ConvergenceChecked
from models.bayes.provenance import package_versions, provenance_attributes
from models.bayes.storage import write_posterior


@dataclass(frozen=True, eq=False)
class PosteriorFit(ConvergenceChecked):
    """A fitted Bayesian model: posterior, specification and provenance.

    Attributes
    ----------
    idata : arviz.InferenceData
        At least ``posterior`` and ``sample_stats`` (with ``diverging``); the families add
        ``log_likelihood``, ``log_prior`` and ``observed_data``.
    spec : dict
        What was fitted (outcome, terms, sampler settings, sizes), family by family.
    priors : dict
        Each prior used and where it came from.
    data_hash : str
        sha256 of the model data.
    seed : int
    versions : dict
        Package versions (:func:`models.bayes.provenance.package_versions`).
    wall_times : dict
        Seconds spent, by phase (``compile_s``, ``sampling_s``, ``postprocess_s``, ``total_s``).
    """

    idata: Any
    spec: dict[str, Any]
    priors: dict[str, Any]
    data_hash: str
    seed: int
    versions: dict[str, str]
    wall_times: dict[str, float]
    # Summaries and diagnostics computed once per fit (the object is frozen; the cache is not).
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False,
                                   kw_only=True)
    model_name: ClassVar[str] = "posterior"

    @classmethod
    def record(cls, idata, *, spec: dict[str, Any], priors: dict[str, Any], data_hash: str,
               seed: int, times: dict[str, float], **fields: Any):
        """The fit of ``idata`` with its provenance taken now: the installed package
        versions, the wall times (rounded to 0.1 ms) and the same attributes stamped on the
        posterior group, so that a posterior saved on its own still says what produced it."""
        fit = cls(idata=idata, spec=spec, priors=priors, data_hash=data_hash, seed=seed,
                  versions=package_versions(),
                  wall_times={key: round(value, 4) for key, value in times.items()}, **fields)
        idata.posterior.attrs.update(fit.attributes())
        return fit

    @property
    def divergences(self) -> int:
        """Divergent transitions over all chains."""
        stats = self.idata.sample_stats
        return int(stats["diverging"].sum()) if "diverging" in stats else 0

    def tidy(self, auxiliary: bool = True) -> pd.DataFrame:
        """One row per term: term, estimate (posterior mean), std_error (posterior sd),
        ci_low, ci_high (94% HDI), prob_positive, r_hat, ess_bulk, n_obs, divergences, and
        the family's own columns. ``auxiliary`` adds scale and nuisance terms."""
        key = f"tidy:aux={auxiliary}"
        if key not in self._cache:
            self._cache[key] = self._build_tidy(auxiliary)
        return self._cache[key].copy()

    def _build_tidy(self, auxiliary: bool) -> pd.DataFrame:
        raise NotImplementedError(f"{type(self).__name__} does not summarise its posterior")

    def extra_attributes(self) -> dict[str, Any]:
        """Provenance beyond the common fields, saved with the file; none by default."""
        return {}

    def attributes(self) -> dict[str, str]:
        """Provenance as netCDF-safe attributes (JSON strings)."""
        return provenance_attributes(self.model_name, self.spec, self.priors, self.data_hash,
                                     self.seed, self.versions, self.wall_times,
                                     **self.extra_attributes())

    def recomputed_on_load(self) -> dict[str, tuple[str, ...]]:
        """Variables the file leaves out because :meth:`restore` recomputes them exactly from
        what it stores: group -> variable names (an empty tuple: the whole group). None by
        default."""
        return {}

    @classmethod
    def restore(cls, idata) -> None:
        """Recompute, in place, what :meth:`recomputed_on_load` left out of a loaded file."""
        raise NotImplementedError(f"{cls.__name__} leaves nothing out of its files")

    def save_netcdf(self, path: str | Path) -> Path:
        """Write the InferenceData with the provenance attached to every group of the file
        (not to ``self.idata``), without what :meth:`restore` recomputes on load
        (:func:`models.bayes.storage.load_posterior`)."""
        kind = type(self)
        return write_posterior(self.idata, path, self.attributes(), self.recomputed_on_load(),
                               fit_class=f"{kind.__module__}:{kind.__qualname__}")
