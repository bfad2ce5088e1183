"""Guard test helpers: hand-built heads and a keyword embedder standing in for MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.guard.guard import Guard
from alignlab.heads import LinearHead


def head(dim: int, coef: float = 10.0, intercept: float = -5.0, threshold: float = 0.5) -> LinearHead:
    """Fires (score > 0.5) when the mean feature exceeds 0.5 (for coef 10, intercept -5)."""
    return LinearHead(mean=np.zeros(dim, np.float32), scale=np.ones(dim, np.float32),
                      coef=np.full(dim, coef / dim, np.float32), intercept=intercept, threshold=threshold)


class KeywordEmbedder:
    """Feature 1.0 when a keyword occurs: a transparent stand-in for MiniLM in unit tests."""

    def __init__(self, word: str = "bomb", fail: bool = False) -> None:
        self.word, self.fail = word, fail
        self.tokens_embedded, self.params = 0, 0
        self.output_calls = 0

    def _f(self, texts):
        if self.fail:
            raise RuntimeError("embedder crashed")
        return np.array([[1.0 if self.word in t else 0.0] for t in texts], np.float32)

    def input_features(self, convs):
        return self._f([c[-1]["content"] for c in convs])

    def output_features(self, texts):
        self.output_calls += 1
        return self._f(texts)

    def exchange_features(self, convs, texts):
        return self._f(texts)


def embed_guard(word="bomb", fail=False, **kw) -> Guard:
    g = Guard(backbone="embed", heads={"embed.input": head(1), "embed.output": head(1),
                                       "embed.exchange": head(1)}, refusal_message="BLOCKED", **kw)
    g._embedder = KeywordEmbedder(word, fail)
    return g


@pytest.fixture
def guard_parts():
    """(head, KeywordEmbedder, embed_guard) factories."""
    return head, KeywordEmbedder, embed_guard
