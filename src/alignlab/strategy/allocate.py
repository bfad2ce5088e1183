"""Allocating effort across the ten ladder techniques when the true difficulty level is unknown.

The question seed 003 ends on: a technique helps if it is sufficient, but if it is insufficient it can
make systems merely *look* safe (and speed up capabilities), and every unit spent on it is taken from
the others. This module is the model that answers it, for a prior over the true level and a budget.

Model (exactly what is implemented):

* The true difficulty ``D`` is one of the levels 1..10, with prior ``p_D`` (ten weights, sum 1).
* Technique ``j`` (one per level) is *sufficient* iff ``D <= j``; later techniques supersede earlier
  ones. Level 10 ("impossible") can never be made ready.
* An allocation ``x_j >= 0`` with ``sum_j x_j = B`` (the budget). Readiness follows a cost curve
  ``r_j = 1 - exp(-x_j / c_j)`` for ``j <= 9`` (``c_j`` the cost scale: the spend that makes a
  technique ready with probability ``1 - 1/e``) and ``r_10 = 0`` whatever is spent, so ``x_10`` buys
  nothing: budget put there is budget *held back*, which the optimiser chooses only when every
  technique would do net harm. Techniques are ready independently of each other.
* Success: ``P(success | D) = 1 - prod_{j >= D} (1 - r_j)``; so ``P(success | D=10) = 0``.
* Harm of deploying insufficient techniques: with no sufficient technique ready but some insufficient
  one (``j < D``) ready, the system is deployed *looking* safe, losing the chance to notice and stop:
  ``harm(D) = h * prod_{j >= D} (1 - r_j) * (1 - prod_{j < D} (1 - r_j))``, ``h`` the harm weight (in
  units of the value of success). No separate capabilities-acceleration term: ``h`` stands for both.
* Objective: ``EV(x) = sum_D p_D [P(success | D) - harm(D)]``, maximised over the simplex.

Writing ``s_j = x_j / c_j``, ``S_D = sum_{D <= j <= 9} s_j`` (``S_10 = 0``) and ``T = S_1``, the two
parts are ``P(success | D) = 1 - e^{-S_D}`` and ``harm(D) = h (e^{-S_D} - e^{-T})``, hence
``EV = sum_D p_D (1 - (1 + h) e^{-S_D}) + h e^{-T}`` and
``dEV/dx_j = [(1 + h) sum_{D <= j} p_D e^{-S_D} - h e^{-T}] / c_j`` (``j <= 9``; 0 for ``j = 10``).
EV is not concave when ``h > 0`` (the last term is convex), so it is maximised by SLSQP with this
gradient from several fixed starts (uniform, each single technique, and seeded random points); the
best end point wins. Everything is deterministic.

Sensitivity: each input (each prior weight, renormalised; each cost scale; ``h``; ``B``) is moved by
``±step`` (default 10%; for ``h = 0`` the step is ``±step`` absolute, and a negative ``h`` is clipped
to 0), the allocation re-optimised, and ``d(optimal EV)`` and the budget share moved
(``sum_j |x'_j - x_j| / 2B``) reported; inputs are ranked by ``max |dEV|``.

Monte Carlo: ``N`` seeded samples of the uncertain inputs: prior ``~ Dirichlet(k * p)`` over the
levels with ``p_D > 0`` (``k`` the concentration), each ``c_j ~ c_j * LogNormal(0, sigma_c)`` and
``h ~ h * LogNormal(0, sigma_h)``, independently. Reported: 5/50/95% bands of the EV of the chosen
(central) allocation, of ``P(success | D)`` under it, and, when re-optimising (warm-started from the
central optimum), of each ``x_j`` and of the re-optimised EV.

The inputs (``AllocationConfig``, read from YAML and checked) are in
:mod:`alignlab.strategy.allocate_config`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alignlab.strategy.allocate_config import (
    N_LEVELS,
    N_READY,
    AllocationConfig,
    AllocationError,
    load_allocation_config,
    normalise_prior,
)
from alignlab.strategy.ladder import LEVEL_NAMES

# AllocationError and load_allocation_config are defined in allocate_config and importable here too.
__all__ = ["AllocationConfig", "AllocationError", "allocate", "expected_value",
           "harm_given_level", "load_allocation_config", "monte_carlo", "normalise_prior", "optimise",
           "sensitivity", "success_given_level"]


# ---------------------------------------------------------------------------------------------- model

def _suffix(s: np.ndarray) -> np.ndarray:
    """S_D for D = 1..10 from s (..., 9): the spend-over-cost of the techniques sufficient at D."""
    suf = np.cumsum(s[..., ::-1], axis=-1)[..., ::-1]
    return np.concatenate([suf, np.zeros(s.shape[:-1] + (1,))], axis=-1)


def success_given_level(x: Sequence[float] | np.ndarray, costs: Sequence[float] | np.ndarray) -> np.ndarray:
    """P(success | D) for D = 1..10 under allocation ``x`` (10 values; also batched as (n, 10)).

    Args:
        x: spend per technique 1..10.
        costs: cost scales of techniques 1..9 (broadcasts against ``x``'s leading axes).

    Returns:
        ``1 - prod_{j >= D} (1 - r_j)`` per level; the last entry (D = 10) is 0.
    """
    s = np.asarray(x, float)[..., :N_READY] / np.asarray(costs, float)
    return 1.0 - np.exp(-_suffix(s))


def harm_given_level(x: Sequence[float] | np.ndarray, costs: Sequence[float] | np.ndarray,
                     harm_weight: float | np.ndarray) -> np.ndarray:
    """harm(D) = h * P(no sufficient technique ready | D) * P(some insufficient one ready | D).

    Args:
        x: spend per technique 1..10 (or batched (n, 10)).
        costs: cost scales of techniques 1..9.
        harm_weight: h (scalar, or one per batch row with shape (n, 1)).

    Returns:
        The harm per level D = 1..10 (0 at D = 1: nothing there is insufficient).
    """
    s = np.asarray(x, float)[..., :N_READY] / np.asarray(costs, float)
    pre = np.concatenate([np.zeros(s.shape[:-1] + (1,)), np.cumsum(s, axis=-1)], axis=-1)
    return np.asarray(harm_weight) * np.exp(-_suffix(s)) * (1.0 - np.exp(-pre))


def expected_value(x: Sequence[float] | np.ndarray, prior: Sequence[float] | np.ndarray,
                   costs: Sequence[float] | np.ndarray, harm_weight: float | np.ndarray) -> dict[str, Any]:
    """The objective and its parts for one allocation (or a batch).

    Args:
        x: spend per technique 1..10, or (n, 10).
        prior: p_D, 10 values or (n, 10).
        costs: cost scales 1..9, or (n, 9).
        harm_weight: h, scalar or (n, 1).

    Returns:
        ``{"ev", "p_success", "harm"}`` (expected over the prior), floats or arrays of shape (n,).
    """
    ps = success_given_level(x, costs)
    hm = harm_given_level(x, costs, harm_weight)
    p = np.asarray(prior, float)
    succ, harm = (p * ps).sum(-1), (p * hm).sum(-1)
    return {"ev": succ - harm, "p_success": succ, "harm": harm}


def _objective(prior: np.ndarray, costs: np.ndarray, h: float, budget: float):
    """-EV and its gradient as functions of the budget shares y = x / B."""
    def f(y: np.ndarray) -> tuple[float, np.ndarray]:
        s = budget * y[:N_READY] / costs
        S = _suffix(s)
        e = np.exp(-S)
        total = e[0]
        ev = float((prior * (1.0 - (1.0 + h) * e)).sum() + h * total)
        gs = (1.0 + h) * np.cumsum(prior[:N_READY] * e[:N_READY]) - h * total
        grad = np.zeros(N_LEVELS)
        grad[:N_READY] = budget * gs / costs
        return -ev, -grad
    return f


def optimise(prior: Sequence[float] | np.ndarray, costs: Sequence[float] | np.ndarray, harm_weight: float,
             budget: float, starts: int = 6, seed: int = 0, warm: Sequence[np.ndarray] = (),
             full: bool = True) -> np.ndarray:
    """The allocation maximising EV on the simplex ``sum x = budget``, ``x >= 0``.

    SLSQP with the analytic gradient from fixed starts (uniform over 1..9, each single technique when
    ``full``, ``warm`` starts, and ``starts`` seeded Dirichlet points); the best end point wins.

    Args:
        prior: p_D for D = 1..10.
        costs: cost scales 1..9.
        harm_weight: h >= 0.
        budget: B > 0.
        starts: random starts.
        seed: seed of the random starts.
        warm: extra starting allocations (in spend units, summing to ``budget``).
        full: also start from the uniform and every single-technique allocation.

    Returns:
        The allocation (10 values, non-negative, summing to ``budget``).
    """
    from scipy.optimize import minimize

    p, c = np.asarray(prior, float), np.asarray(costs, float)
    f = _objective(p, c, float(harm_weight), float(budget))
    inits: list[np.ndarray] = [np.asarray(w, float) / budget for w in warm]
    if full or not inits:
        inits.append(np.r_[np.full(N_READY, 1.0 / N_READY), 0.0])
    if full:
        inits += [np.eye(N_LEVELS)[j] for j in range(N_READY)]
    rng = np.random.default_rng(seed)
    inits += [np.r_[rng.dirichlet(np.ones(N_READY)), 0.0] for _ in range(starts)]
    cons = ({"type": "eq", "fun": lambda y: y.sum() - 1.0, "jac": lambda y: np.ones_like(y)},)
    best, best_v = inits[0], f(inits[0])[0]
    for y0 in inits:
        r = minimize(f, y0, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * N_LEVELS, constraints=cons,
                     options={"maxiter": 200, "ftol": 1e-12})
        y = np.clip(r.x, 0.0, None)
        y /= y.sum()
        v = f(y)[0]
        if v < best_v - 1e-13:
            best, best_v = y, v
    return best * budget


# ------------------------------------------------------------------------------------ the full answer

def _level_rows(x: np.ndarray, prior: np.ndarray, costs: np.ndarray, h: float, budget: float) -> list[dict]:
    ps, hm = success_given_level(x, costs), harm_given_level(x, costs, h)
    ready = np.r_[1.0 - np.exp(-x[:N_READY] / costs), 0.0]
    return [{"level": d + 1, "name": LEVEL_NAMES[d + 1], "prior": float(prior[d]),
             "cost_scale": float(costs[d]) if d < N_READY else None, "allocation": float(x[d]),
             "share": float(x[d] / budget), "readiness": float(ready[d]),
             "p_success_given_D": float(ps[d]), "harm_given_D": float(hm[d])} for d in range(N_LEVELS)]


def allocation_inputs(config: AllocationConfig, prior: Sequence[float] | np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray, float, float]:
    p = np.asarray(normalise_prior(prior) if prior is not None else config.prior, float)
    return p, np.asarray(config.cost_scales, float), float(config.harm_weight), float(config.budget)


def sensitivity(config: AllocationConfig, prior: Sequence[float] | np.ndarray | None = None,
                base: np.ndarray | None = None) -> list[dict]:
    """Move each input by ``±config.sensitivity_step``, re-optimise, and rank inputs by effect.

    Args:
        config: the allocation config.
        prior: a prior replacing ``config.prior`` (e.g. a posterior).
        base: the optimal allocation at the central inputs (computed when None).

    Returns:
        One row per input, largest ``max |dEV|`` first: ``input``, ``label``, ``value``, ``low``,
        ``high`` (the moved values), ``ev_low``/``ev_high`` (re-optimised EV), ``dev_low``/``dev_high``,
        ``shift_low``/``shift_high`` (budget share moved), ``allocation_low``/``allocation_high``,
        ``effect``.
    """
    p, c, h, B = allocation_inputs(config, prior)
    step = config.sensitivity_step
    x0 = optimise(p, c, h, B, config.starts) if base is None else np.asarray(base, float)
    ev0 = float(expected_value(x0, p, c, h)["ev"])
    rows = []

    def run(label: str, key: str, value: float, variants: list[tuple[float, tuple]]) -> None:
        row: dict[str, Any] = {"input": key, "label": label, "value": value}
        for side, (moved, (pp, cc, hh, bb)) in zip(("low", "high"), variants):
            # Warm starts: the base shares, and the base readiness bought at the new costs with the rest
            # held back (when affordable), so the re-optimised EV is never worse than keeping either.
            same = np.r_[x0[:N_READY] * cc / c, 0.0]
            warm = [x0 * bb / B] + ([same + np.eye(N_LEVELS)[-1] * (bb - same.sum())] if same.sum() <= bb else [])
            x = optimise(pp, cc, hh, bb, starts=2, warm=warm)
            ev = float(expected_value(x, pp, cc, hh)["ev"])
            row.update({side: moved, f"ev_{side}": ev, f"dev_{side}": ev - ev0,
                        f"shift_{side}": float(np.abs(x / bb - x0 / B).sum() / 2),
                        f"allocation_{side}": [float(v) for v in x]})
        row["effect"] = max(abs(row["dev_low"]), abs(row["dev_high"]))
        rows.append(row)

    for d in range(N_LEVELS):
        vs = []
        for sign in (-1, 1):
            q = p.copy()
            q[d] *= 1 + sign * step
            vs.append((float(q[d] / q.sum()), (q / q.sum(), c, h, B)))
        run(f"prior P(D={d + 1})", f"prior[{d + 1}]", float(p[d]), vs)
    for j in range(N_READY):
        vs = []
        for sign in (-1, 1):
            cc = c.copy()
            cc[j] *= 1 + sign * step
            vs.append((float(cc[j]), (p, cc, h, B)))
        run(f"cost scale c{j + 1}", f"cost_scales[{j + 1}]", float(c[j]), vs)
    dh = h * step if h > 0 else step
    run("harm weight h", "harm_weight", h, [(max(0.0, h - dh), (p, c, max(0.0, h - dh), B)),
                                            (h + dh, (p, c, h + dh, B))])
    run("budget B", "budget", B, [(B * (1 - step), (p, c, h, B * (1 - step))),
                                  (B * (1 + step), (p, c, h, B * (1 + step)))])
    rows.sort(key=lambda r: -r["effect"])
    return rows


def _bands(a: np.ndarray) -> dict[str, Any]:
    q = np.percentile(a, [5, 50, 95], axis=0)
    return {"p5": q[0].tolist(), "p50": q[1].tolist(), "p95": q[2].tolist()}


def monte_carlo(config: AllocationConfig, x: np.ndarray, prior: Sequence[float] | np.ndarray | None = None,
                samples: int | None = None, seed: int | None = None,
                reoptimise: bool | None = None) -> dict[str, Any] | None:
    """5/50/95% bands over the uncertain inputs (see the module docstring for the distributions).

    Args:
        config: the allocation config (its ``uncertainty`` section).
        x: the chosen allocation (at the central inputs).
        prior: a prior replacing ``config.prior``.
        samples: overrides ``uncertainty.samples``.
        seed: overrides ``uncertainty.seed``.
        reoptimise: overrides ``uncertainty.reoptimise``.

    Returns:
        ``None`` for 0 samples, else ``{"samples", "seed", "ev_chosen", "p_success_chosen",
        "p_success_given_D"}`` bands and, when re-optimising, ``"allocation"`` and ``"ev_reoptimised"``
        bands and ``"regret"`` (EV lost by not knowing the inputs: reoptimised minus chosen).
    """
    u = config.uncertainty
    n = u.samples if samples is None else samples
    seed = u.seed if seed is None else seed
    reopt = u.reoptimise if reoptimise is None else reoptimise
    if n <= 0:
        return None
    p, c, h, B = allocation_inputs(config, prior)
    rng = np.random.default_rng(seed)
    priors = np.zeros((n, N_LEVELS))
    pos = p > 0
    priors[:, pos] = rng.dirichlet(u.prior_concentration * p[pos], size=n)
    costs = c * np.exp(u.cost_sigma * rng.standard_normal((n, N_READY)))
    hs = h * np.exp(u.harm_sigma * rng.standard_normal((n, 1)))
    chosen = expected_value(np.broadcast_to(x, (n, N_LEVELS)), priors, costs, hs)
    res: dict[str, Any] = {
        "samples": n, "seed": seed, "reoptimised": reopt,
        "ev_chosen": _bands(chosen["ev"]), "p_success_chosen": _bands(chosen["p_success"]),
        "harm_chosen": _bands(chosen["harm"]),
        "p_success_given_D": _bands(success_given_level(np.broadcast_to(x, (n, N_LEVELS)), costs)),
    }
    if reopt:
        xs = np.array([optimise(priors[i], costs[i], float(hs[i, 0]), B, starts=1, seed=i, warm=[x], full=False)
                       for i in range(n)])
        ev_re = expected_value(xs, priors, costs, hs)["ev"]
        res.update({"allocation": _bands(xs), "ev_reoptimised": _bands(ev_re),
                    "regret": _bands(ev_re - chosen["ev"])})
    return res


def allocate(config: AllocationConfig, prior: Sequence[float] | np.ndarray | None = None, *,
             samples: int | None = None, seed: int | None = None, reoptimise: bool | None = None,
             with_sensitivity: bool = True) -> dict[str, Any]:
    """Optimal allocation, its EV and parts, P(success | D), sensitivity and Monte Carlo bands.

    Args:
        config: the allocation config.
        prior: a prior replacing ``config.prior`` (e.g. a posterior from :func:`update_prior`).
        samples: Monte Carlo samples (default ``config.uncertainty.samples``; 0 for none).
        seed: Monte Carlo seed (default ``config.uncertainty.seed``).
        reoptimise: re-optimise per sample (default ``config.uncertainty.reoptimise``).
        with_sensitivity: run the sensitivity analysis.

    Returns:
        JSON-ready: ``allocation`` (10 spends), ``expected_value``, ``expected_p_success``,
        ``expected_harm``, ``p_success_given_D``, ``harm_given_D``, ``levels`` (a row per level),
        ``baselines`` (EV of simple allocations), ``sensitivity``, ``monte_carlo``, ``inputs``.
    """
    p, c, h, B = allocation_inputs(config, prior)
    x = optimise(p, c, h, B, config.starts)
    ev = expected_value(x, p, c, h)
    uniform9 = np.r_[np.full(N_READY, B / N_READY), 0.0]
    singles = [float(expected_value(np.eye(N_LEVELS)[j] * B, p, c, h)["ev"]) for j in range(N_READY)]
    best_single = int(np.argmax(singles))
    res: dict[str, Any] = {
        "model": "alignlab.strategy.allocate",
        "inputs": {"budget": B, "harm_weight": h, "prior": p.tolist(), "cost_scales": c.tolist(),
                   "sensitivity_step": config.sensitivity_step,
                   "uncertainty": config.uncertainty.model_dump()},
        "allocation": x.tolist(),
        "expected_value": float(ev["ev"]), "expected_p_success": float(ev["p_success"]),
        "expected_harm": float(ev["harm"]),
        "p_success_given_D": success_given_level(x, c).tolist(),
        "harm_given_D": harm_given_level(x, c, h).tolist(),
        "levels": _level_rows(x, p, c, h, B),
        "baselines": {
            "uniform_all_10": float(expected_value(np.full(N_LEVELS, B / N_LEVELS), p, c, h)["ev"]),
            "uniform_1_to_9": float(expected_value(uniform9, p, c, h)["ev"]),
            "best_single": {"level": best_single + 1, "ev": singles[best_single]},
        },
        "sensitivity": sensitivity(config, p, base=x) if with_sensitivity else [],
        "monte_carlo": monte_carlo(config, x, p, samples, seed, reoptimise),
    }
    return res
