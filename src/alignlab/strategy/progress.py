"""Field progress: will technical alignment be done before the deadline, and what growth would it take?

The back-of-envelope of seed 001 ("maybe 10% done"; at 20% growth per year of the field "very likely
not done in time if your timelines are 5 years, and probably not even if they're 10", but at 50% "at
least some chance in 5 years, and probably OK at 10"), made explicit.

Model (exactly what is implemented; effort in units of the field's effort this year, ``E0 = 1``):

* Past effort grew at ``g_hist`` per year forever, so the cumulative past effort is
  ``W0 = integral_{-inf}^0 (1 + g_hist)^t dt = 1 / ln(1 + g_hist)``.
* A fraction ``f0`` of the work is done, so the total is ``W = W0 / f0`` and the remaining work is
  ``R = W - W0 = (1/f0 - 1) / ln(1 + g_hist)``.
* From now on the effort grows at ``g`` per year and AI assistance multiplies its effectiveness by
  ``m(t) = min(m0 (1 + a)^t, cap)`` (``m0 = 1``, ``a = 0``: none; the past had none). The work done by
  year ``T`` is ``F(T) = integral_0^T m(t) (1 + g)^t dt``, in closed form (piecewise exponential).
* The work is done at the first ``T`` with ``F(T) >= R``. With ``m = 1`` and ``g = g_hist`` this is
  ``T = ln(1 / f0) / ln(1 + g)``.
* ``f0`` is log-normal with median the central estimate and a **90%** interval of ``×/÷ factor``:
  ``sigma = ln(factor) / 1.645``. A sampled ``f0 >= 1`` counts as done already (``T = 0``).
* ``T`` falls as ``f0`` rises, so ``P(T <= t) = P(f0 >= f*(t))`` with
  ``f*(t) = 1 / (1 + F(t) ln(1 + g_hist))``: exact, no sampling. The deadline is fixed, a list of
  (years, probability) points, or log-normal (integrated on a fine grid of its normal quantiles):
  ``P(done before deadline) = E_deadline[P(T <= deadline)]``. A seeded Monte Carlo over ``f0`` and
  the deadline is reported alongside, as a check of the exact figure.
* The needed growth rate for ``P(done before deadline) = target`` is found by bisection on ``g`` in
  ``[0, cap]`` (the probability rises with ``g``), with the past fixed at ``g_hist`` (the default
  ``g_hist`` is the current ``g``): when even ``cap`` falls short, it says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from alignlab.errors import AlignlabError

DONE_INTERVAL = 0.90
"""The ``×/÷ done_factor`` interval of ``f0`` is its central 90% interval."""
_Z90 = 1.6448536269514722
GROWTH_CAP = 3.0
"""Default upper end of the needed-growth search (300% per year)."""


class ProgressError(AlignlabError, ValueError):
    """A progress-model input that cannot be used; the message is one line naming the input."""


def _norm_cdf(z: np.ndarray | float) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(z)


@dataclass(frozen=True)
class Deadline:
    """The deadline (timelines) distribution, in years from now."""

    kind: str
    """'fixed', 'points' or 'lognormal'."""
    years: tuple[float, ...] = ()
    """fixed: the one value; points: the support."""
    probs: tuple[float, ...] = ()
    """points: the probability of each year (sum 1)."""
    median: float | None = None
    """lognormal: the median (years)."""
    sigma: float | None = None
    """lognormal: sigma of ln(years)."""

    def _lognormal(self) -> tuple[float, float]:
        """(median, sigma) of a lognormal deadline."""
        assert self.median is not None and self.sigma is not None  # parse_deadline sets both
        return self.median, self.sigma

    def expect(self, fn: Any) -> float:
        """E[fn(deadline)] for a function vectorised over an array of years."""
        if self.kind == "lognormal":
            median, sigma = self._lognormal()
            z = np.linspace(-8.0, 8.0, 4001)
            w = np.exp(-z * z / 2)
            vals = fn(median * np.exp(sigma * z))
            return float((w * vals).sum() / w.sum())
        return float((np.asarray(self.probs) * fn(np.asarray(self.years))).sum())

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "lognormal":
            median, sigma = self._lognormal()
            return median * np.exp(sigma * rng.standard_normal(n))
        return rng.choice(np.asarray(self.years), size=n, p=np.asarray(self.probs))

    def quantile_95(self) -> float:
        if self.kind == "lognormal":
            median, sigma = self._lognormal()
            return median * math.exp(_Z90 * sigma)
        return max(self.years)

    @property
    def spec(self) -> str:
        if self.kind == "fixed":
            return f"{self.years[0]:g}"
        if self.kind == "lognormal":
            return f"lognormal:{self.median:g}:{self.sigma:g}"
        return "points:" + ",".join(f"{y:g}={p:g}" for y, p in zip(self.years, self.probs))

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}}


def fixed_deadline(years: float) -> Deadline:
    """A deadline of exactly ``years``."""
    return parse_deadline(str(years))


def parse_deadline(spec: str | float) -> Deadline:
    """Parse ``"10"`` (fixed), ``"lognormal:MEDIAN:SIGMA"`` or ``"points:5=0.3,10=0.5,20=0.2"``.

    Args:
        spec: the deadline specification (years from now).

    Returns:
        The deadline.

    Raises:
        ProgressError: a malformed spec or bad values, in one line with the accepted forms.
    """
    forms = "accepted: YEARS (e.g. 10), lognormal:MEDIAN:SIGMA (e.g. lognormal:10:0.6), points:Y=P,... " \
            "(e.g. points:5=0.3,10=0.5,20=0.2)"
    s = str(spec).strip()
    try:
        if s.startswith("lognormal:"):
            parts = s.split(":")
            if len(parts) != 3:
                raise ValueError
            med, sig = float(parts[1]), float(parts[2])
            if not (med > 0 and sig >= 0 and math.isfinite(med) and math.isfinite(sig)):
                raise ProgressError(f"deadline {s!r}: the median must be > 0 and sigma >= 0")
            return Deadline("lognormal", median=med, sigma=sig)
        if s.startswith("points:"):
            pairs = [p.split("=") for p in s[len("points:"):].split(",") if p.strip()]
            if not pairs or any(len(p) != 2 for p in pairs):
                raise ValueError
            ys, ps = [float(p[0]) for p in pairs], [float(p[1]) for p in pairs]
            if any(not (y > 0 and math.isfinite(y)) for y in ys) or any(p < 0 for p in ps):
                raise ProgressError(f"deadline {s!r}: years must be > 0 and probabilities >= 0")
            if abs(sum(ps) - 1) > 1e-6:
                raise ProgressError(f"deadline {s!r}: the probabilities must sum to 1, got {sum(ps):.4g}")
            return Deadline("points", years=tuple(ys), probs=tuple(p / sum(ps) for p in ps))
        y = float(s)
    except ProgressError:
        raise
    except ValueError:
        raise ProgressError(f"deadline {s!r} not understood; {forms}") from None
    if not (y > 0 and math.isfinite(y)):
        raise ProgressError(f"deadline {s!r}: must be > 0 years")
    return Deadline("fixed", years=(y,), probs=(1.0,))


@dataclass(frozen=True)
class ProgressInputs:
    """Inputs of the field-progress model (rates are fractions per year: 0.2 = 20%/yr)."""

    done: float = 0.1
    """f0: central estimate (median) of the fraction of technical alignment already done."""
    done_factor: float = 2.5
    """×/÷ factor of f0's 90% interval (1: no uncertainty)."""
    growth: float = 0.2
    """g: yearly growth of the field's effort from now on."""
    historical_growth: float | None = None
    """g_hist: the growth that produced the work done so far (None: the same as ``growth``)."""
    ai_multiplier: float = 1.0
    """m0: today's AI-assistance multiplier on the effectiveness of the effort."""
    ai_growth: float = 0.0
    """a: yearly growth of the multiplier."""
    ai_cap: float | None = None
    """Upper bound of the multiplier (None: none)."""
    deadline: Deadline = field(default_factory=lambda: fixed_deadline(10))
    """The deadline distribution."""

    @property
    def g_hist(self) -> float:
        return self.growth if self.historical_growth is None else self.historical_growth

    @property
    def sigma(self) -> float:
        """Log-normal sigma of f0."""
        return math.log(self.done_factor) / _Z90

    def validate(self) -> ProgressInputs:
        """Raise ProgressError naming the first bad input; return self."""
        def rate(name: str, v: float, lo: float, strict: bool = True) -> None:
            if not math.isfinite(v) or (v <= lo if strict else v < lo):
                raise ProgressError(f"{name}: must be {'>' if strict else '>='} {lo:g}, got {v:g}")
            if v > 10:
                raise ProgressError(f"{name}: {v:g} is {100 * v:g}%/yr; give rates as fractions (0.2 = 20%/yr)")

        if not (0 < self.done < 1):
            raise ProgressError(f"done: the fraction already done must be in (0, 1) (0.1 = 10%), got {self.done:g}")
        if not (self.done_factor >= 1 and math.isfinite(self.done_factor)):
            raise ProgressError(f"done factor: must be >= 1 (1 = no uncertainty; 2.5 = 90% interval ×/÷2.5), "
                                f"got {self.done_factor:g}")
        rate("growth", self.growth, -1.0)
        if self.historical_growth is not None:
            rate("historical growth", self.historical_growth, 0.0)
        elif self.growth <= 0:
            raise ProgressError(f"historical growth: defaults to growth, which is {self.growth:g}; the past effort "
                                "1/ln(1+g) is finite only for growth > 0, so pass a positive historical growth")
        if not (self.ai_multiplier > 0 and math.isfinite(self.ai_multiplier)):
            raise ProgressError(f"AI multiplier: must be > 0 (1 = no assistance), got {self.ai_multiplier:g}")
        rate("AI growth", self.ai_growth, -1.0)
        if self.ai_cap is not None and not (self.ai_cap > 0 and math.isfinite(self.ai_cap)):
            raise ProgressError(f"AI cap: must be > 0, got {self.ai_cap:g}")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "deadline"}
        return {**d, "historical_growth": self.g_hist, "done_interval": DONE_INTERVAL,
                "done_sigma": self.sigma, "deadline": self.deadline.to_dict()}


# ------------------------------------------------------------------------------------- closed forms

def _E(k: float, tau: np.ndarray) -> np.ndarray:
    """integral_0^tau e^{k s} ds."""
    if abs(k) < 1e-12:
        return tau
    with np.errstate(over="ignore"):  # centuries of compound growth: inf work, fine
        return np.expm1(k * tau) / k


def _E_inv(k: float, y: np.ndarray) -> np.ndarray:
    """tau with _E(k, tau) = y (inf where the integral never reaches y)."""
    if abs(k) < 1e-12:
        return np.asarray(y, float)
    arg = k * np.asarray(y, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(arg > -1, np.log1p(np.maximum(arg, -1 + 1e-300)) / k, np.inf)


def _segments(inp: ProgressInputs) -> list[tuple[float, float, float]]:
    """(start, integrand at start, exponential rate) pieces of m(t) (1+g)^t."""
    lg, la, m0, cap = math.log1p(inp.growth), math.log1p(inp.ai_growth), inp.ai_multiplier, inp.ai_cap
    if cap is None or (m0 <= cap and la <= 0):
        return [(0.0, m0, lg + la)]
    if m0 >= cap and la >= 0:
        return [(0.0, cap, lg)]
    tc = math.log(cap / m0) / la
    if la > 0:
        return [(0.0, m0, lg + la), (tc, cap * math.exp(lg * tc), lg)]
    return [(0.0, cap, lg), (tc, cap * math.exp(lg * tc), lg + la)]


def work_by(t: float | np.ndarray, inputs: ProgressInputs) -> np.ndarray:
    """F(t): effort-weighted work done in the next ``t`` years, in units of this year's effort.

    Args:
        t: years from now (array or scalar).
        inputs: the model inputs (growth and AI multiplier).

    Returns:
        ``integral_0^t m(s) (1 + g)^s ds``.
    """
    t = np.asarray(t, float)
    segs = _segments(inputs)
    total = np.zeros_like(t)
    for i, (s, amp, k) in enumerate(segs):
        end = segs[i + 1][0] if i + 1 < len(segs) else np.inf
        total = total + amp * _E(k, np.clip(t - s, 0.0, end - s))
    return total


def remaining_work(f0: float | np.ndarray, historical_growth: float) -> np.ndarray:
    """R = (1/f0 - 1) / ln(1 + g_hist): the work left, in units of this year's effort (0 when f0 >= 1)."""
    f = np.asarray(f0, float)
    return np.maximum(1.0 / f - 1.0, 0.0) / math.log1p(historical_growth)


def completion_time(f0: float | np.ndarray, inputs: ProgressInputs) -> np.ndarray:
    """The first T with F(T) >= R(f0): years until the work is done (inf: never).

    Args:
        f0: fraction done (array or scalar; ``inputs.done`` is ignored).
        inputs: the model inputs.

    Returns:
        Years from now, per f0.
    """
    R = remaining_work(f0, inputs.g_hist)
    segs = _segments(inputs)
    T = np.full_like(R, np.inf)
    before = 0.0
    for i, (s, amp, k) in enumerate(segs):
        end = segs[i + 1][0] if i + 1 < len(segs) else np.inf
        cap_here = before + amp * float(_E(k, np.asarray(end - s))) if np.isfinite(end) else np.inf
        here = np.isinf(T) & (R <= cap_here)
        T = np.where(here, s + _E_inv(k, (R - before) / amp), T)
        before = cap_here
    return T


def p_done_within(t: float | np.ndarray, inputs: ProgressInputs) -> np.ndarray:
    """P(T <= t) over f0's log-normal uncertainty (exact).

    Args:
        t: years from now (array or scalar).
        inputs: the model inputs.

    Returns:
        The probability that the work is done within ``t`` years.
    """
    f_star = 1.0 / (1.0 + work_by(t, inputs) * math.log1p(inputs.g_hist))
    if inputs.sigma == 0:
        return (inputs.done >= f_star - 1e-12).astype(float)
    with np.errstate(divide="ignore"):  # f* = 0 (infinite work available): log -inf, P = 1
        return 1.0 - _norm_cdf((np.log(f_star) - math.log(inputs.done)) / inputs.sigma)


def p_done_by_deadline(inputs: ProgressInputs) -> float:
    """P(done before the deadline): ``E_deadline[P(T <= deadline)]``."""
    return inputs.deadline.expect(lambda y: p_done_within(y, inputs))


def completion_quantiles(inputs: ProgressInputs, qs: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> dict:
    """Quantiles of the completion time (T falls as f0 rises: T_q = T(f0's (1 - q) quantile))."""
    from scipy.special import ndtri

    out = {}
    for q in qs:
        f = inputs.done * math.exp(inputs.sigma * float(ndtri(1 - q)))
        t = float(completion_time(f, inputs))
        out[f"p{round(100 * q)}"] = t if math.isfinite(t) else None
    return out


def progress_model(inputs: ProgressInputs, horizons: Sequence[float] = (5, 10, 20), samples: int = 20000,
                   seed: int = 0, grid_years: float | None = None) -> dict[str, Any]:
    """P(done before the deadline), P(done within each horizon), the completion-time distribution.

    Args:
        inputs: the model inputs (validated here).
        horizons: years at which to report P(done within).
        samples: Monte Carlo samples for the cross-check (0: none).
        seed: seed of the cross-check.
        grid_years: end of the P(done within T) curve (default: 40 years or 1.5x the deadline's 95%).

    Returns:
        JSON-ready: ``inputs``, ``p_done_by_deadline``, ``p_done_within`` (horizon → P), ``central``
        (T at the median f0), ``completion_time`` quantiles, ``curve`` (``years``, ``p_done``,
        ``density``), ``monte_carlo`` (``p_done_by_deadline``, ``se``, ``samples``, ``seed``) or None.

    Raises:
        ProgressError: a bad input.
    """
    inputs.validate()
    end = grid_years or max(40.0, 1.5 * inputs.deadline.quantile_95())
    years = np.linspace(0.0, end, 321)
    curve = p_done_within(years, inputs)
    central = float(completion_time(inputs.done, inputs))
    res: dict[str, Any] = {
        "model": "alignlab.strategy.progress",
        "inputs": inputs.to_dict(),
        "remaining_work_years_of_current_effort": float(remaining_work(inputs.done, inputs.g_hist)),
        "p_done_by_deadline": p_done_by_deadline(inputs),
        "p_done_within": {f"{h:g}": float(p_done_within(h, inputs)) for h in horizons},
        "central": central if math.isfinite(central) else None,
        "completion_time": completion_quantiles(inputs),
        "curve": {"years": years.tolist(), "p_done": curve.tolist(),
                  "density": np.gradient(curve, years).tolist()},
        "monte_carlo": None,
    }
    if samples > 0:
        rng = np.random.default_rng(seed)
        f0 = inputs.done * np.exp(inputs.sigma * rng.standard_normal(samples))
        hit = completion_time(f0, inputs) <= inputs.deadline.sample(rng, samples)
        p = float(hit.mean())
        res["monte_carlo"] = {"samples": samples, "seed": seed, "p_done_by_deadline": p,
                              "se": math.sqrt(max(p * (1 - p), 1e-12) / samples)}
    return res


def needed_growth(inputs: ProgressInputs, probability: float = 0.5, deadline: Deadline | None = None,
                  cap: float = GROWTH_CAP, tol: float = 1e-7) -> dict[str, Any]:
    """The growth rate g at which P(done before the deadline) equals ``probability`` (bisection).

    The past stays fixed at ``inputs.g_hist`` (the current growth when no historical growth is given)
    while the future growth ``g`` is searched in ``[0, cap]``.

    Args:
        inputs: the model inputs (``growth`` is the current rate).
        probability: the target probability, in (0, 1).
        deadline: replaces ``inputs.deadline``.
        cap: the highest growth rate tried.
        tol: bisection tolerance on g.

    Returns:
        ``{"probability", "deadline", "historical_growth", "growth" (None when unreachable),
        "achievable", "p_at_zero", "p_at_cap", "cap", "message", "curve": {"growth", "p"}}``.

    Raises:
        ProgressError: a bad input or a target outside (0, 1).
    """
    if not 0 < probability < 1:
        raise ProgressError(f"target probability: must be in (0, 1), got {probability:g}")
    if not cap > 0:
        raise ProgressError(f"growth cap: must be > 0, got {cap:g}")
    base = replace(inputs, historical_growth=inputs.g_hist, deadline=deadline or inputs.deadline).validate()

    def p_at(g: float) -> float:
        return p_done_by_deadline(replace(base, growth=g))

    lo, hi = 0.0, cap
    p_lo, p_hi = p_at(lo), p_at(hi)
    gs = np.linspace(0.0, cap, 121)
    res: dict[str, Any] = {"probability": probability, "deadline": base.deadline.to_dict(),
                           "historical_growth": base.g_hist, "cap": cap, "p_at_zero": p_lo, "p_at_cap": p_hi,
                           "curve": {"growth": gs.tolist(), "p": [p_at(float(g)) for g in gs]}}
    dl = base.deadline
    when = f"by {dl.spec} years" if dl.kind == "fixed" else f"by the deadline {dl.spec}"
    if p_lo >= probability:
        return {**res, "growth": 0.0, "achievable": True,
                "message": f"no growth needed: constant effort already gives P = {p_lo:.1%} {when}"}
    if p_hi < probability:
        return {**res, "growth": None, "achievable": False,
                "message": f"no growth rate up to {cap:.0%}/yr suffices: at {cap:.0%}/yr P = {p_hi:.1%} {when}, "
                           f"below the target {probability:.0%}"}
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p_at(mid) < probability else (lo, mid)
    g = (lo + hi) / 2
    return {**res, "growth": g, "achievable": True,
            "message": f"growth of {g:.1%}/yr gives P = {probability:.0%} of done {when}"}


def progress_report(inputs: ProgressInputs, growth_rates: Sequence[float] | None = None,
                    target_probability: float = 0.5, horizons: Sequence[float] = (5, 10, 20),
                    samples: int = 20000, seed: int = 0, cap: float = GROWTH_CAP) -> dict[str, Any]:
    """The model at several growth rates, with one fixed past, and the needed growth rate.

    The past is the same for every scenario: ``inputs.historical_growth`` if given, else the first
    growth rate (the field's growth so far; the others are what-ifs from now on).

    Args:
        inputs: the model inputs (``growth`` is replaced by each rate).
        growth_rates: the rates to compare (default: ``[inputs.growth]``).
        target_probability: the probability the needed growth rate must reach.
        horizons: years at which to report P(done within).
        samples: Monte Carlo samples of the cross-check per scenario.
        seed: seed of the cross-check.
        cap: the highest growth rate tried by the needed-growth search.

    Returns:
        ``{"historical_growth", "scenarios": [progress_model result per rate], "needed_growth"}``.
    """
    rates = list(growth_rates) if growth_rates else [inputs.growth]
    hist = inputs.historical_growth if inputs.historical_growth is not None else rates[0]
    base = replace(inputs, growth=rates[0], historical_growth=hist)
    scenarios = [progress_model(replace(base, growth=g), horizons, samples, seed) for g in rates]
    return {"historical_growth": hist, "growth_rates": rates, "scenarios": scenarios,
            "needed_growth": needed_growth(base, target_probability, cap=cap)}
