"""The priors of partial pooling: the TWFE roles plus the group sd of each varying slope.

See :mod:`models.heterogeneity.bayes` for the model and why the group sd's default is a
half-Student-t.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.bayes.panel_priors import PanelPriors
from models.bayes.priors import Prior, PriorSpecError, prior_from_value

GROUP_SD_ROLE = "group_sd"


@dataclass(frozen=True)
class HeterogeneityPriors:
    """TWFE priors (:class:`PanelPriors`, over the original regressors) plus the group sd.

    ``group_sd`` is the prior of tau for every varying regressor, ``group_sd_terms`` per
    regressor; None means the data-scaled default halfstudentt(3, s_y / s_w(x)).
    """

    panel: PanelPriors
    group_sd: Prior | None = None
    group_sd_terms: tuple[tuple[str, Prior], ...] = ()

    @classmethod
    def parse(cls, priors: Any) -> HeterogeneityPriors:
        """From None, a :class:`PanelPriors`, a mapping or ``ROLE=DIST`` strings.

        ``group_sd`` / ``group_sd.<x>`` entries go to the group sd; the rest to the TWFE roles.
        """
        if isinstance(priors, HeterogeneityPriors):
            return priors
        if priors is None:
            return cls(PanelPriors())
        if isinstance(priors, PanelPriors):
            return cls(priors)
        if isinstance(priors, str):
            priors = [priors]
        group_sd: Prior | None = None
        terms: dict[str, Prior] = {}
        rest: Any
        if isinstance(priors, Mapping):
            rest = {}
            for key, value in priors.items():
                role, _, term = str(key).partition(".")
                if role != GROUP_SD_ROLE:
                    rest[key] = value
                elif isinstance(value, Mapping) and not term:
                    terms.update({str(t): _positive_prior(v, f"{key}.{t}")
                                  for t, v in value.items()})
                elif term:
                    terms[term] = _positive_prior(value, str(key))
                else:
                    group_sd = _positive_prior(value, str(key))
            panel = PanelPriors.from_mapping(rest) if rest else PanelPriors()
        else:
            rest = []
            for text in priors:
                key, sep, value = str(text).partition("=")
                role, _, term = key.strip().partition(".")
                if sep and role == GROUP_SD_ROLE:
                    prior = _positive_prior(value.strip(), key.strip())
                    if term:
                        terms[term] = prior
                    else:
                        group_sd = prior
                else:
                    rest.append(text)
            panel = PanelPriors().with_overrides(rest, source="cli") if rest else PanelPriors()
        return cls(panel, group_sd, tuple(terms.items()))

    def group_sd_prior(self, term: str, default: Prior) -> tuple[Prior, str]:
        """The tau prior of ``term`` and where it came from."""
        terms = dict(self.group_sd_terms)
        if term in terms:
            return terms[term], "user"
        if self.group_sd is not None:
            return self.group_sd, "user"
        return default, "default"


def _positive_prior(value: Any, where: str) -> Prior:
    prior = value if isinstance(value, Prior) else prior_from_value(value, f"prior {where!r}")
    if prior.support != "positive":
        raise PriorSpecError(f"Prior {where} = {prior} must be on the positive half-line "
                             "(halfnormal, exponential, ...): it is a standard deviation.")
    return prior
