"""The one interface every model backend implements.

A conversation is a list of messages, each a plain dict ``{"role": ..., "content": ...}`` with
role ``system``, ``user`` or ``assistant`` (the shape chat templates and OpenAI-compatible servers
use), so conversations serialise to JSON as they are.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, TypedDict

from alignlab.errors import AlignlabError

ROLES = ("system", "user", "assistant")


class Message(TypedDict):
    """One turn of a conversation."""

    role: str
    content: str


Conversation = list[Message]
ProgressFn = Callable[[int], None]
"""Called with the number of items just finished, so callers can drive a progress bar."""


def msg(role: str, content: str) -> Message:
    """Build a message, checking the role."""
    if role not in ROLES:
        raise ValueError(f"message role must be one of {ROLES}, got {role!r}")
    return {"role": role, "content": content}


def user(content: str) -> Conversation:
    """A one-turn conversation with a single user message."""
    return [msg("user", content)]


def validate_conversation(conv: Sequence[Message], where: str = "conversation") -> None:
    """Raise ValueError naming ``where`` if ``conv`` is not a list of role/content messages."""
    if not conv:
        raise ValueError(f"{where}: empty conversation; give at least one message")
    for i, m in enumerate(conv):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"{where}[{i}]: a message needs 'role' and 'content' keys")
        if m["role"] not in ROLES:
            raise ValueError(f"{where}[{i}]: role {m['role']!r} is not one of {ROLES}")
        if not isinstance(m["content"], str):
            raise ValueError(f"{where}[{i}]: content must be a string")


@dataclass(frozen=True)
class GenerationConfig:
    """How to sample a reply."""

    max_new_tokens: int = 256
    """Upper bound on generated tokens."""
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass (ignored when greedy)."""
    seed: int | None = None
    """Seed for sampling; with temperature > 0 a seed makes the request deterministic."""
    stop: tuple[str, ...] = ()
    """Strings that end generation; the stop string itself is not returned."""
    logprobs: bool = False
    """Return per-token log-probabilities of the generated tokens where the backend can."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def deterministic(self) -> bool:
        """Greedy, or sampled with a fixed seed: the same request gives the same reply."""
        return self.temperature == 0 or self.seed is not None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


FinishReason = Literal["stop", "length", "error", "blocked"]


@dataclass
class Completion:
    """One generated reply."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason = "stop"
    logprobs: list[float] | None = None
    """Log-probability of each generated token, when requested and available."""
    error: str | None = None
    """Set when the backend failed for this item; ``text`` is then empty."""
    meta: dict[str, Any] | None = None
    """Backend or wrapper details (e.g. a guard's decision)."""
    cached: bool = field(default=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("cached")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Completion:
        return cls(**{k: d[k] for k in ("text", "prompt_tokens", "completion_tokens",
                                         "finish_reason", "logprobs", "error", "meta") if k in d})


class GenerationMonitor(Protocol):
    """Watches an in-process generation and may stop rows (used by guards).

    ``rows`` are indices into the conversations given to ``generate``. ``pooled`` holds, per row,
    the mean hidden state at ``layers`` (concatenated) over the prompt (``on_prompt``) or over the
    generated tokens so far (``on_output``), or None when no layers are asked for. Each method
    returns one bool per row: True stops that row (its finish reason becomes ``blocked``).
    """

    layers: tuple[int, ...]
    every: int
    """Call ``on_output`` every this many generated tokens (0: only when a row finishes)."""

    def on_prompt(self, rows: list[int], pooled: Any) -> list[bool]: ...

    def on_output(self, rows: list[int], texts: list[str], pooled: Any,
                  n_tokens: list[int]) -> list[bool]: ...


class WhiteBoxRequired(AlignlabError, TypeError):
    """Raised when a feature needs in-process weights and the model is black-box."""


class ChatModel(abc.ABC):
    """A chat model: batched generation and log-likelihood scoring.

    Implementations must be safe to call with any number of conversations; they batch internally.
    """

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """A string that names the weights and backend, stable across processes (cache key)."""

    @abc.abstractmethod
    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        config: GenerationConfig | None = None,
        progress: ProgressFn | None = None,
    ) -> list[Completion]:
        """Generate one reply per conversation, in input order."""

    def score(
        self,
        conversations: Sequence[Sequence[Message]],
        continuations: Sequence[Sequence[str]],
    ) -> list[list[float]]:
        """Log-likelihood (natural log, summed over tokens) of each candidate assistant reply.

        ``continuations[i]`` holds the candidates for ``conversations[i]``; the result has the same
        shape. Backends that cannot score raise ``NotImplementedError`` with a reason.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot score continuations")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, threads)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identity}>"


def can_score(model: ChatModel) -> bool:
    """Whether ``model.score`` works (white-box or scripted scoring), probed once per instance.

    Judges, scorers and the eval runner choose log-likelihood or generation with this; the probe
    result is kept on the model so repeated calls cost nothing.
    """
    known = getattr(model, "_alignlab_can_score", None)
    if known is None:
        try:
            model.score([[msg("user", "ok?")]], [["yes"]])
            known = True
        except NotImplementedError:
            known = False
        try:
            model._alignlab_can_score = known  # type: ignore[attr-defined]
        except AttributeError:  # a model that refuses attributes is probed each time
            pass
    return known


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop string; return the text and whether a stop string was hit."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut], cut < len(text)
