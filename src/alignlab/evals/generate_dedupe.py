"""Duplicates in generated evaluations: exact and MiniLM near-duplicates of taken texts.

A ``DedupePool`` holds every text already taken: the items of every packaged suite
(``packaged_reference``), the prompt's format examples and the generated items accepted so far. A
candidate whose normalised text matches one, or whose MiniLM embedding (``default_embedder``, one
per process) has a cosine at or above the threshold with one, is rejected with the reason and the
nearest text. numpy and the embedding model are imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alignlab.evals.generate_parse import normalise


def item_text(it: Any) -> str:
    """The prompt text of an item (dict or EvalItem): its question, or its user turns."""
    get = it.get if isinstance(it, dict) else (lambda k, d=None: getattr(it, k, d))
    q = get("question")
    return q if q else "\n".join(get("turns") or [])


def packaged_reference() -> tuple[list[tuple[str, str]], list[str]]:
    """``(text, "suite:id")`` for every item of every packaged suite, and the suites with no file."""
    from alignlab.evals.items import SUITES, ItemError, load_suite

    texts: list[tuple[str, str]] = []
    missing: list[str] = []
    for name in SUITES:
        try:
            items = load_suite(name)
        except ItemError as e:
            if "no such file" in str(e):
                missing.append(name)
                continue
            raise
        texts += [(item_text(it), f"{name}:{it.id}") for it in items]
    return texts, missing


if TYPE_CHECKING:
    from alignlab.models.embedder import SentenceEmbedder

_EMBEDDER: SentenceEmbedder | None = None


def default_embedder() -> SentenceEmbedder:
    """One MiniLM per process (texts embedded as they are, unit-normalised)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        from alignlab.models.embedder import SentenceEmbedder

        _EMBEDDER = SentenceEmbedder()
    return _EMBEDDER


class DedupePool:
    """Texts already taken (packaged items, format examples, accepted generated items)."""

    def __init__(self, embedder: Any, threshold: float) -> None:
        import numpy as np

        self.embedder, self.threshold = embedder, threshold
        self.exact: dict[str, tuple[str, str]] = {}
        self.labels: list[tuple[str, str]] = []
        self.vecs = np.zeros((0, 0), dtype=np.float32)

    def add(self, texts: Sequence[str], labels: Sequence[tuple[str, str]], vecs: Any = None) -> None:
        """Add texts with ``(kind, name)`` labels; kind is packaged, example or generated."""
        import numpy as np

        if not texts:
            return
        vecs = self.embedder.embed(list(texts)) if vecs is None else vecs
        vecs = np.asarray(vecs, dtype=np.float32).reshape(len(texts), -1)
        for t, lab in zip(texts, labels):
            self.exact.setdefault(normalise(t), lab)
        self.labels += list(labels)
        self.vecs = vecs if self.vecs.size == 0 else np.concatenate([self.vecs, vecs])

    def check(self, text: str, vec: Any) -> tuple[str, str, dict[str, Any]] | None:
        """``(reason, detail, nearest)`` if ``text`` duplicates a pooled text, else None."""
        import numpy as np

        def reason(kind: str, how: str) -> str:
            return "copies_prompt_example" if kind == "example" else f"{how}_duplicate_{kind}"

        lab = self.exact.get(normalise(text))
        if lab is not None:
            return reason(lab[0], "exact"), f"same text as {lab[1]}", {"of": lab[1], "cosine": 1.0}
        if self.vecs.size == 0:
            return None
        sims = self.vecs @ np.asarray(vec, dtype=np.float32).reshape(-1)
        j = int(np.argmax(sims))
        if float(sims[j]) >= self.threshold:
            kind, name = self.labels[j]
            return (reason(kind, "near"), f"cosine {float(sims[j]):.3f} with {name}",
                    {"of": name, "cosine": round(float(sims[j]), 4)})
        return None
