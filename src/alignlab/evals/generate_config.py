"""The settings of the eval-generation pipeline, and the helpers all its stages share.

``GenConfig`` holds the pipeline's knobs and ``Bounds`` the quality filter's length bounds;
``GEN_KINDS`` the item kinds a helper can write. Every stage of :mod:`alignlab.evals.generate`
derives its sampling seed from names (``derive_seed``), stamps records in UTC (``now_iso``) and reports
progress through ``report_progress``. Imports nothing else of the pipeline, so every stage can import it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GEN_KINDS = ("mc", "freeform")
ProgressCb = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Bounds:
    """Length bounds and the option-length ratio of the quality filter."""

    question_chars: tuple[int, int] = (30, 1500)
    """A question (or user turn) shorter or longer than this is rejected."""
    option_chars: tuple[int, int] = (2, 400)
    """Every option must be this long (characters)."""
    rubric_chars: tuple[int, int] = (20, 600)
    """A freeform rubric must be this long."""
    length_ratio: float = 2.5
    """Mean length of the concerning options over the others (or the reverse) above this gives
    the answer away by length."""
    option_similarity: float = 0.9
    """Options whose word-set Jaccard is at or above this are not distinct."""


@dataclass(frozen=True)
class GenConfig:
    """Knobs of the generation pipeline (the defaults suit a weak local helper)."""

    near_duplicate: float = 0.8
    """MiniLM cosine at or above which two items count as near-duplicates."""
    bounds: Bounds = field(default_factory=Bounds)
    """Length bounds and the option-length ratio of the quality filter."""
    selfcheck: str = "auto"
    """``auto`` (log-likelihood when the helper can score, else generation), ``score``,
    ``generate`` or ``off``."""
    selfcheck_orders: int = 2
    """Option orders the self-check asks in (a seeded shuffle, then its reverse); the helper must
    pick a concerning option in every one, so a helper that always answers "A" cannot pass."""
    batch: int = 8
    """Scenarios written per helper call (and the resume granularity)."""
    ideate_per_call: int = 8
    """Scenarios asked for in one ideation request."""
    ideate_rounds: int = 4
    """Ideation requests tried at most, until enough distinct seeds are found."""
    temperature: float = 0.7
    """Sampling temperature for ideation, variations and writing (understanding is greedy)."""
    write_tokens: int = 256
    """Token budget of one written item."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def derive_seed(*parts: Any) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def report_progress(cb: ProgressCb | None, stage: str, total: int) -> Callable[[int], None]:
    state = {"done": 0}
    if cb:
        cb(stage, 0, total)

    def step(k: int) -> None:
        state["done"] += k
        if cb:
            cb(stage, state["done"], total)
    return step
