"""Deterministic replies for unit tests. Never a stand-in for a real model in results."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from alignlab.models.base import ChatModel, Completion, GenerationConfig, Message, ProgressFn, apply_stop

Responder = Callable[[Sequence[Message]], str]


class ScriptedModel(ChatModel):
    """Replies from a function of the conversation, a fixed mapping, or a fixed string.

    Args:
        reply: a callable ``conversation -> str``, a dict from the last user message to the reply
            (with ``default`` for anything else), or a fixed string.
        default: the reply when a dict has no entry.
        name: part of the identity.
        fail_on: substrings of the last message for which the model returns an error completion.
        score_fn: optional ``(conversation, continuation) -> float`` for ``score``.
    """

    def __init__(
        self,
        reply: Responder | dict[str, str] | str = "OK",
        default: str = "I cannot help with that.",
        name: str = "scripted",
        fail_on: Sequence[str] = (),
        score_fn: Callable[[Sequence[Message], str], float] | None = None,
    ) -> None:
        self._reply = reply
        self._default = default
        self._name = name
        self._fail_on = tuple(fail_on)
        self._score_fn = score_fn
        self.calls: list[list[Message]] = []

    @property
    def identity(self) -> str:
        return f"scripted:{self._name}"

    def _respond(self, conv: Sequence[Message]) -> str:
        if callable(self._reply):
            return self._reply(conv)
        if isinstance(self._reply, dict):
            return self._reply.get(conv[-1]["content"], self._default)
        return self._reply

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        config: GenerationConfig | None = None,
        progress: ProgressFn | None = None,
    ) -> list[Completion]:
        config = config or GenerationConfig()
        out = []
        for conv in conversations:
            self.calls.append(list(conv))
            last = conv[-1]["content"]
            if any(f in last for f in self._fail_on):
                out.append(Completion(text="", finish_reason="error", error="scripted failure"))
            else:
                words = self._respond(conv).split(" ")
                truncated = len(words) > config.max_new_tokens
                text = " ".join(words[: config.max_new_tokens])
                text, hit = apply_stop(text, config.stop)
                n_prompt = sum(len(m["content"].split()) for m in conv)
                out.append(Completion(text=text, prompt_tokens=n_prompt,
                                      completion_tokens=len(text.split()),
                                      finish_reason="length" if truncated and not hit else "stop"))
            if progress:
                progress(1)
        return out

    def score(self, conversations, continuations):
        if self._score_fn is None:
            # A deterministic pseudo-score so code paths run; tests that need meaning pass score_fn.
            def h(c: str) -> float:
                return -(int(hashlib.sha256(c.encode()).hexdigest()[:6], 16) % 1000) / 100.0
            return [[h(c) for c in cands] for cands in continuations]
        return [[self._score_fn(conv, c) for c in cands]
                for conv, cands in zip(conversations, continuations, strict=True)]
