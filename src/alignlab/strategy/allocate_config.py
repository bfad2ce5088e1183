"""The inputs of the allocation model: its config, read from YAML and checked with one-line errors.

``AllocationConfig`` holds the budget, the harm weight, the prior over the ten levels, the nine
cost scales, the sensitivity step, the optimiser's starts and the ``Uncertainty`` of the Monte
Carlo bands; the equations that use them are in :mod:`alignlab.strategy.allocate`.
``load_allocation_config`` reads the packaged default (``files/allocate_default.yaml``) or a
user's file, and every problem becomes one ``AllocationError`` line naming the file and field.
``normalise_prior`` checks and rescales a prior (also used by :mod:`alignlab.strategy.evidence`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alignlab.errors import AlignlabError

N_LEVELS = 10
N_READY = 9
"""Techniques 1..9 can be made ready; 10 cannot."""
DEFAULT_CONFIG = Path(__file__).parent / "files" / "allocate_default.yaml"


class AllocationError(AlignlabError, ValueError):
    """An allocation input that cannot be used; the message is one line naming the file and field."""


class Uncertainty(BaseModel):
    """How uncertain the inputs are, for the Monte Carlo bands."""

    model_config = ConfigDict(extra="forbid")

    prior_concentration: float = Field(default=20.0, gt=0)
    """Dirichlet concentration k: prior samples ~ Dirichlet(k * prior); larger is surer."""
    cost_sigma: float = Field(default=0.7, ge=0)
    """Log-normal sigma of each cost scale (independent); 0.7 is a factor of 2 at one sigma."""
    harm_sigma: float = Field(default=0.5, ge=0)
    """Log-normal sigma of the harm weight."""
    samples: int = Field(default=200, ge=0)
    """Monte Carlo samples N (0: no bands)."""
    seed: int = 0
    """Seed of the Monte Carlo samples."""
    reoptimise: bool = True
    """Re-optimise the allocation for each sample (bands of x_j), else only the chosen one's EV."""


class AllocationConfig(BaseModel):
    """Inputs of the allocation model (see the module docstring for the equations)."""

    model_config = ConfigDict(extra="forbid")

    budget: float = Field(default=10.0, gt=0)
    """Budget B, in the units of the cost scales."""
    harm_weight: float = Field(default=0.5, ge=0)
    """h: the cost of deploying a looks-safe but insufficient system, in units of success."""
    prior: list[float]
    """p_D for D = 1..10; must sum to 1."""
    cost_scales: list[float]
    """c_j for j = 1..9 (level 10 cannot be made ready): spend giving readiness 1 - 1/e."""
    sensitivity_step: float = Field(default=0.1, gt=0, lt=1)
    """Relative step of the sensitivity analysis."""
    starts: int = Field(default=6, ge=0)
    """Random optimiser starts, besides the uniform and single-technique ones."""
    uncertainty: Uncertainty = Field(default_factory=Uncertainty)

    @field_validator("prior")
    @classmethod
    def _check_prior(cls, v: list[float]) -> list[float]:
        return normalise_prior(v, what="")

    @field_validator("cost_scales")
    @classmethod
    def _check_costs(cls, v: list[float]) -> list[float]:
        if len(v) != N_READY:
            raise ValueError(f"{N_READY} cost scales needed (levels 1-9; level 10 can never be made ready), "
                             f"got {len(v)}")
        bad = [i + 1 for i, c in enumerate(v) if not (np.isfinite(c) and c > 0)]
        if bad:
            raise ValueError(f"cost scales must be positive numbers; level(s) {bad} are not")
        return [float(c) for c in v]


def normalise_prior(prior: Sequence[float] | np.ndarray, what: str = "prior: ") -> list[float]:
    """Validate ten non-negative weights summing to 1 (within 1e-3) and rescale them exactly.

    Args:
        prior: the weights for levels 1..10.
        what: prefix of the error message (the field's name).

    Returns:
        The weights as floats summing to 1.

    Raises:
        ValueError: wrong length, a negative or non-finite weight, or a sum away from 1.
    """
    p = [float(x) for x in prior]
    if len(p) != N_LEVELS:
        raise ValueError(f"{what}{N_LEVELS} weights needed (levels 1-10), got {len(p)}")
    bad = [i + 1 for i, x in enumerate(p) if not (np.isfinite(x) and x >= 0)]
    if bad:
        raise ValueError(f"{what}weights must be >= 0; level(s) {bad} are not")
    total = sum(p)
    if abs(total - 1.0) > 1e-3:
        raise ValueError(f"{what}weights must sum to 1, got {total:.4g}; rescale them")
    return [x / total for x in p]


def _error_line(source: str, err: ValidationError) -> str:
    e = err.errors()[0]
    loc = "".join(f"[{p + 1}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")  # [k]: level k
    msg = str(e["msg"]).removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        known = ", ".join(AllocationConfig.model_fields) + "; uncertainty: " + ", ".join(Uncertainty.model_fields)
        msg = f"unknown field; known fields: {known}"
    elif e["type"] == "missing":
        msg = "missing; add it (see the packaged allocate_default.yaml)"
    return f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}"


def config_from_dict(data: Any, source: str = "config") -> AllocationConfig:
    """Validate a mapping as an :class:`AllocationConfig`; errors are one line naming ``source``.

    Args:
        data: the parsed mapping.
        source: a name for messages (the file name).

    Returns:
        The validated config.

    Raises:
        AllocationError: the first problem, as ``"SOURCE: FIELD: what is wrong and how to fix it"``.
    """
    if not isinstance(data, dict):
        raise AllocationError(f"{source}: expected a mapping with budget, harm_weight, prior, cost_scales, "
                              "uncertainty")
    try:
        return AllocationConfig.model_validate(data)
    except ValidationError as err:
        raise AllocationError(_error_line(source, err)) from None


def load_allocation_config(path: str | Path | None = None) -> AllocationConfig:
    """Load an allocation config from YAML (the packaged default when ``path`` is None).

    Args:
        path: a YAML file with the fields of :class:`AllocationConfig`.

    Returns:
        The validated config.

    Raises:
        AllocationError: a missing file, bad YAML or a bad field, in one line naming the file.
    """
    from alignlab.config import read_yaml

    p = Path(path) if path is not None else DEFAULT_CONFIG
    return config_from_dict(read_yaml(p, AllocationError, "allocation config"), p.name)
