"""A lexical explainer and scorer: a transparent, model-free reference point for auto-interp.

``--explainer lexical`` labels a latent with the tokens most often marked in the windows it was
shown (the "Most often marked" line of the explainer prompt), e.g. ``"def", "class"``.
``--scorer lexical`` answers detection with "does any label token occur in the text?" and fuzzing
with "is every marked span one of the label tokens?", and its Yes-minus-No margin is the number of
label tokens found, so AUROC is defined too.

Neither is an AI: together they measure how far a latent is predicted by *which tokens it fires
on*, under exactly the same held-out protocol as a model explainer and scorer (the scorer sees only
the label and the text; the label was written from other windows). That makes them a useful
floor and a check that the pipeline can separate an SAE from its baselines when the explainer and
scorer are competent at this one kind of explanation. They read only the prompt formats of
:mod:`alignlab.interp.autointerp`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from alignlab.models.base import ChatModel, Completion, GenerationConfig, Message, ProgressFn

_COMMON = re.compile(r"^Most often marked: (.*)$", re.MULTILINE)
_QUOTED = re.compile(r'"([^"]+)"')
_PATTERN = re.compile(r"^Pattern: (.*)$", re.MULTILINE)
_TEXT = re.compile(r"^Text: (.*)$", re.MULTILINE)
_MARKED = re.compile(r"<<(.+?)>>")
_FUZZ = "marked like <<this>>"


def _last_user(conv: Sequence[Message]) -> str:
    return next((m["content"] for m in reversed(conv) if m["role"] == "user"), "")


def _words(label: str) -> list[str]:
    quoted = [w.strip().lower() for w in _QUOTED.findall(label) if w.strip()]
    return quoted or [w.lower() for w in re.findall(r"\w+", label)]


def lexical_margin(prompt: str) -> float | None:
    """Yes-minus-No margin for a detection or fuzzing prompt (None: not a scorer prompt)."""
    pattern, text = _PATTERN.search(prompt), _TEXT.search(prompt)
    if not pattern or not text:
        return None
    words = set(_words(pattern.group(1)))
    body = text.group(1)
    if not words:
        return -1.0
    if _FUZZ in prompt:
        spans = [s.strip().lower() for s in _MARKED.findall(body)]
        fits = sum(any(w in s or s in w for w in words) for s in spans)
        return 1.0 + fits if spans and fits == len(spans) else -1.0 - (len(spans) - fits)
    tokens = re.findall(r"\w+|[^\w\s]+", body.replace("<<", "").replace(">>", "").lower())
    found = sum(t in words for t in tokens)
    return float(found) if found else -1.0


class LexicalModel(ChatModel):
    """Explains with the most often marked tokens; scores by token overlap (see module docstring)."""

    @property
    def identity(self) -> str:
        return "lexical"

    def generate(self, conversations: Sequence[Sequence[Message]], config: GenerationConfig | None = None,
                 progress: ProgressFn | None = None) -> list[Completion]:
        out = []
        for conv in conversations:
            prompt = _last_user(conv)
            margin = lexical_margin(prompt)
            if margin is not None:
                text = "Yes" if margin > 0 else "No"
            else:
                m = _COMMON.search(prompt)
                text = m.group(1).strip() if m and m.group(1).strip() != "(none)" else ""
            out.append(Completion(text=text))
        return out

    def score(self, conversations: Sequence[Sequence[Message]],
              continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        out = []
        for conv, cands in zip(conversations, continuations, strict=True):
            margin = lexical_margin(_last_user(conv))
            margin = -1.0 if margin is None else margin  # not a scorer prompt: "No"
            out.append([margin if c.strip().lower() == "yes" else 0.0 for c in cands])
        return out
