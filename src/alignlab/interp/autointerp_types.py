"""The shared types of auto-interp: its settings, the token table, windows and per-latent examples.

Imported by :mod:`alignlab.interp.autointerp_examples` (which builds the examples),
:mod:`alignlab.interp.autointerp_score` (which explains and scores them) and
:mod:`alignlab.interp.autointerp` (the run); it imports none of them. Holds no torch import: the
tensor fields are typed ``Any``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SCORING_MODES = ("auto", "logprob", "generate")
MAIN_SOURCE = "sae"
DEAD = "no activating window in the budget"


@dataclass
class AutoInterpConfig:
    """Settings of an auto-interpretability run (all sampling is seeded per latent)."""

    ctx_len: int = 32
    """Tokens per window; windows never cross a document."""
    n_top: int = 8
    """Top-activating windows shown to the explainer."""
    n_quantile: int = 8
    """More windows shown to the explainer, drawn evenly across the activation-quantile bins."""
    n_bins: int = 5
    """Rank-quantile bins of the activating windows below the top ones."""
    n_detection: int = 10
    """Held-out activating windows scored in detection (the positives)."""
    n_negative: int = 10
    """Random non-activating windows scored in detection (the negatives)."""
    n_fuzzing: int = 10
    """Held-out activating windows scored in fuzzing; half marked correctly, half at random."""
    mark_frac: float = 0.0
    """A token is marked as activating when its act is > 0 and >= this fraction of the window max."""
    seed: int = 0
    """Seed for example sampling, fuzzing marks and the shuffled-label derangement."""
    max_new_tokens: int = 32
    """Token budget of the explainer's label."""
    scorer_max_new_tokens: int = 4
    """Token budget of a generated yes/no when the scorer cannot score log-likelihoods."""
    scoring: str = "auto"
    """``logprob`` (compare Yes/No log-likelihoods), ``generate`` (parse a reply) or ``auto``."""
    batch_size: int = 256
    """Scorer conversations per call (records are written after each call)."""
    explain_batch: int = 16
    """Explainer conversations per call (labels are written after each call)."""
    hist_bins: int = 20
    """Bins of the per-latent histogram of non-zero activations."""
    interpretable_threshold: float = 0.7
    """A latent is interpretable when mean(detection, fuzzing) balanced accuracy >= this."""

    def __post_init__(self) -> None:
        for name in ("ctx_len", "n_top", "n_bins", "max_new_tokens", "scorer_max_new_tokens",
                     "batch_size", "explain_batch", "hist_bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"AutoInterpConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_quantile", "n_detection", "n_negative", "n_fuzzing"):
            if getattr(self, name) < 0:
                raise ValueError(f"AutoInterpConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.mark_frac < 1:
            raise ValueError(f"AutoInterpConfig.mark_frac must be in [0, 1), got {self.mark_frac}")
        if self.scoring not in SCORING_MODES:
            raise ValueError(f"AutoInterpConfig.scoring must be one of {SCORING_MODES}, got {self.scoring!r}")
        if not 0 < self.interpretable_threshold <= 1:
            raise ValueError("AutoInterpConfig.interpretable_threshold must be in (0, 1]")

    def rule(self) -> str:
        return (f"interpretable: mean of detection and fuzzing balanced accuracy >= "
                f"{self.interpretable_threshold}; latents where either is undefined (no label, or no "
                f"decided positive or negative item) are excluded and counted")


@dataclass
class TokenTable:
    """The tokens of the activation budget, in corpus order.

    Attributes:
        token_ids: LongTensor [n].
        doc_ids: LongTensor [n]; a window never spans two documents.
        decode_tokens: ids -> one string per token (so highlighting is per token).
        positions: optional LongTensor [n] (offset in the context segment; 0 = BOS): windows also
            break at segment starts and leave the BOS rows out.
    """

    token_ids: Any
    doc_ids: Any
    decode_tokens: Callable[[list[int]], list[str]]
    positions: Any = None


@dataclass
class Windows:
    """Non-overlapping windows over a token table: first row, length, document and offset in it."""

    rows: list[int]
    lengths: list[int]
    docs: list[int]
    offsets: list[int]
    row_window: Any  # LongTensor [n]: window of each row, -1 for rows in no window
    _text: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Context:
    """One window as shown: per-token strings and the latent's per-token activations."""

    window: int
    doc: int
    start: int
    tokens: list[str]
    acts: list[float]
    bin: int | None = None

    def marks(self, frac: float) -> list[int]:
        top = max(self.acts, default=0.0)
        return [i for i, a in enumerate(self.acts) if a > 0 and a >= frac * top]

    def to_dict(self) -> dict:
        d = {"tokens": self.tokens, "acts": [round(a, 4) for a in self.acts], "doc": self.doc,
             "start": self.start}
        if self.bin is not None:
            d["bin"] = self.bin
        return d


@dataclass
class LatentExamples:
    """What one latent gives the explainer and the scorer, and its activation statistics."""

    source: str
    latent: int
    density: float
    max_act: float
    hist: dict
    top: list[Context]
    quantiles: list[Context]
    positives: list[Context]
    """Held-out activating windows for detection."""
    negatives: list[Context]
    fuzz: list[tuple[Context, list[int], bool]]
    """Held-out fuzzing items: window, marked token indices, whether the marks are the true ones."""

    @property
    def shown(self) -> list[Context]:
        return self.top + self.quantiles

    def explainer_windows(self) -> set[int]:
        return {c.window for c in self.shown}

    def scored_windows(self) -> set[int]:
        return {c.window for c in self.positives + self.negatives} | {c.window for c, _, _ in self.fuzz}
