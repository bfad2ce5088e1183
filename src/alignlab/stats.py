"""Statistics: the one place for confidence intervals, paired tests, and how rates and intervals are written."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

T = TypeVar("T")

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """A proportion with its counts and a 95% Wilson interval.

    ``n`` counts decided items only; ``n_unscorable`` counts items that could not be scored and are
    kept out of the denominator (never folded into either side).
    """

    k: int
    n: int
    n_unscorable: int = 0

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return wilson(self.k, self.n) if self.n else None

    def to_dict(self) -> dict:
        ci = self.ci
        return {"rate": self.rate, "ci": list(ci) if ci else None, "k": self.k, "n": self.n,
                "n_unscorable": self.n_unscorable}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (95% by default)."""
    if n <= 0:
        raise ValueError("wilson interval needs n > 0")
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, n], got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the ends (no rounding residue)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def rate_of(values: Sequence[bool | None]) -> Rate:
    """Rate of True among decided values; ``None`` counts as unscorable."""
    decided = [v for v in values if v is not None]
    return Rate(k=sum(1 for v in decided if v), n=len(decided),
                n_unscorable=len(values) - len(decided))


@overload
def bootstrap_ci(values: Sequence[float], stat: Callable[[Sequence[float]], float] = ...,
                 n_boot: int = ..., seed: int = ..., alpha: float = ...) -> tuple[float, float]: ...


@overload
def bootstrap_ci(values: Sequence[T], stat: Callable[[Sequence[T]], float],
                 n_boot: int = ..., seed: int = ..., alpha: float = ...) -> tuple[float, float]: ...


def bootstrap_ci(
    values: Sequence[Any],
    stat: Callable[[Sequence[Any]], float] = lambda xs: sum(xs) / len(xs),
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over ``values``."""
    if not values:
        raise ValueError("bootstrap needs at least one value")
    rng = random.Random(seed)
    n = len(values)
    stats = sorted(stat([values[rng.randrange(n)] for _ in range(n)]) for _ in range(n_boot))
    lo = stats[int(math.floor(alpha / 2 * n_boot))]
    hi = stats[min(n_boot - 1, int(math.ceil((1 - alpha / 2) * n_boot)) - 1)]
    return (lo, hi)


def bootstrap_diff(
    a: Sequence[float], b: Sequence[float], paired: bool = False, n_boot: int = 2000, seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """Difference of means ``mean(b) - mean(a)`` with a 95% percentile bootstrap interval.

    With ``paired=True`` the two sequences are item-aligned and resampled together.
    """
    if not a or not b:
        raise ValueError("bootstrap_diff needs two non-empty samples")
    rng = random.Random(seed)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    diff = mean(b) - mean(a)
    diffs = []
    if paired:
        if len(a) != len(b):
            raise ValueError("paired samples must have equal length")
        n = len(a)
        for _ in range(n_boot):
            idx = [rng.randrange(n) for _ in range(n)]
            diffs.append(mean([b[i] for i in idx]) - mean([a[i] for i in idx]))
    else:
        for _ in range(n_boot):
            ra = [a[rng.randrange(len(a))] for _ in range(len(a))]
            rb = [b[rng.randrange(len(b))] for _ in range(len(b))]
            diffs.append(mean(rb) - mean(ra))
    diffs.sort()
    return diff, (diffs[int(0.025 * n_boot)], diffs[min(n_boot - 1, int(math.ceil(0.975 * n_boot)) - 1)])


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts b and c."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def cohen_kappa(y_true: Sequence[bool], y_pred: Sequence[bool]) -> float | None:
    """Cohen's kappa for two binary raters; None when it is undefined (both raters constant and
    equal, so chance agreement is 1: e.g. no positive labels and no positive predictions)."""
    n = len(y_true)
    if n == 0 or n != len(y_pred):
        raise ValueError("cohen_kappa needs two equal-length, non-empty label lists")
    po = sum(1 for t, p in zip(y_true, y_pred) if t == p) / n
    pt, pp = sum(y_true) / n, sum(y_pred) / n
    pe = pt * pp + (1 - pt) * (1 - pp)
    return None if pe == 1 else (po - pe) / (1 - pe)


def binary_agreement(y_true: Sequence[bool], y_pred: Sequence[bool | None]) -> dict:
    """Accuracy, kappa, precision and recall of predictions against labels.

    Predictions that are ``None`` (unscorable) are counted and excluded from the figures.
    """
    pairs = [(t, p) for t, p in zip(y_true, y_pred, strict=True) if p is not None]
    n_unscorable = len(y_true) - len(pairs)
    if not pairs:
        return {"n": 0, "n_unscorable": n_unscorable, "accuracy": None, "kappa": None,
                "precision": None, "recall": None}
    t = [a for a, _ in pairs]
    p = [b for _, b in pairs]
    tp = sum(1 for a, b in pairs if a and b)
    fp = sum(1 for a, b in pairs if not a and b)
    fn = sum(1 for a, b in pairs if a and not b)
    correct = sum(1 for a, b in pairs if a == b)
    acc = Rate(correct, len(pairs))
    acc_ci = acc.ci
    assert acc_ci is not None  # pairs is non-empty, so the interval exists
    return {
        "n": len(pairs),
        "n_unscorable": n_unscorable,
        "accuracy": acc.rate,
        "accuracy_ci": list(acc_ci),
        "kappa": cohen_kappa(t, p),
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "tp": tp, "fp": fp, "fn": fn, "tn": len(pairs) - tp - fp - fn,
    }


def round_robin(bins: list[list], k: int) -> list:
    """Take up to ``k`` items cycling over ``bins`` (one from each in turn, from the end of each
    list), emptying them as it goes: a selection as even across the bins as ``k`` allows."""
    out: list = []
    while len(out) < k and any(bins):
        for b in bins:
            if b and len(out) < k:
                out.append(b.pop())
    return out


def format_pct(rate: float | None, digits: int = 1) -> str:
    """Format a proportion as a percentage, e.g. ``0.35 -> "35.0%"``; ``None -> "n/a"``.

    Args:
        rate: a proportion in [0, 1], or None when nothing was decided.
        digits: decimals after the point.

    Returns:
        The formatted percentage.
    """
    if rate is None:
        return "n/a"
    return f"{100 * rate:.{digits}f}%"


def format_ci(ci: Sequence[float] | None, digits: int = 1) -> str:
    """Format a 95% interval, e.g. ``(0.221, 0.503) -> "95% CI 22.1–50.3%"``; ``None -> ""``.

    Args:
        ci: (lo, hi) as proportions, or None.
        digits: decimals after the point.

    Returns:
        The formatted interval, empty when there is none.
    """
    if ci is None:
        return ""
    lo, hi = ci
    return f"95% CI {100 * lo:.{digits}f}–{100 * hi:.{digits}f}%"
