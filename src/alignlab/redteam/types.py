"""Shared types of the red-team: judge verdicts, model calls yielded by attacks, attack traces.

Attacks are written as plain sequential Python generators that *yield* the model calls they need
(``Call``) and receive the results. The engine drives many attack streams at once and batches the
calls of all streams per role (target, attacker, judge), so an iterative attack such as PAIR is as
readable as a loop and still runs batched.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from alignlab.data.behaviors import Behavior
from alignlab.judges.types import JudgeItem, Verdict
from alignlab.models.base import Completion, Conversation, GenerationConfig

Role = Literal["target", "attacker", "judge"]


@dataclass
class Call:
    """A request an attack yields to the engine.

    For ``target`` and ``attacker`` roles, ``payload`` is a list of conversations and the engine
    sends back a list of ``Completion``; for ``judge``, ``payload`` is a list of ``JudgeItem`` and
    the engine sends back a list of ``Verdict``.
    """

    role: Role
    payload: list[Any]
    config: GenerationConfig | None = None


@dataclass
class Attempt:
    """One conversation sent to the target within an attack, with its outcome."""

    conversation: list[dict]
    response: str
    verdict: Verdict
    completion_tokens: int = 0
    prompt_tokens: int = 0
    meta: dict[str, Any] | None = None
    """The completion's ``meta`` (e.g. a guard's decision), when the target gave one."""

    def to_dict(self) -> dict[str, Any]:
        d = {"conversation": self.conversation, "response": self.response,
             "verdict": self.verdict.to_dict(), "completion_tokens": self.completion_tokens,
             "prompt_tokens": self.prompt_tokens}
        if self.meta:
            d["meta"] = self.meta
        return d


@dataclass
class AttackResult:
    """What one attack stream produced for one behavior: every target query it made.

    ``queries`` counts target calls; ``attacker_calls`` counts attacker-model calls.
    The best attempt is the first judged harmful, else the highest-scoring one.
    """

    attempts: list[Attempt] = field(default_factory=list)
    attacker_calls: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def queries(self) -> int:
        return len(self.attempts)


AttackStream = Generator[Call, list[Any], AttackResult]


@dataclass
class AttackContext:
    """What an attack gets besides the behavior: its budget, rng and generation settings."""

    budget: int
    """Most target queries this stream may make (for multi-turn: turns)."""
    rng: random.Random
    target_config: GenerationConfig
    attacker_config: GenerationConfig
    has_attacker: bool


class Attack(Protocol):
    """A red-team attack: builds one stream per (behavior, attempt).

    Attributes:
        name: short identifier used on the CLI and in results (``direct``, ``base64``, ``pair``...).
        kind: ``template`` (fixed transform, one query), ``llm`` (needs an attacker model) or
            ``multiturn``.
        description: one line for ``alignlab redteam --list-attacks`` and the report.
    """

    # Read-only members: an attack may set them as class constants (``ClassVar``, as
    # ``TemplateAttack`` does), plain class attributes or properties.
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def description(self) -> str: ...

    def stream(self, behavior: Behavior, ctx: AttackContext) -> AttackStream: ...


def judge_single(item: JudgeItem) -> Generator[Call, list[Any], Verdict]:
    """Helper for attacks: ``verdict = yield from judge_single(item)``."""
    out = yield Call("judge", [item])
    return out[0]


def ask_target(conv: Conversation, config: GenerationConfig | None = None
               ) -> Generator[Call, list[Any], Completion]:
    """Helper for attacks: ``completion = yield from ask_target(conv)``."""
    out = yield Call("target", [conv], config)
    return out[0]


def ask_attacker(conv: Conversation, config: GenerationConfig | None = None
                 ) -> Generator[Call, list[Any], Completion]:
    """Helper for attacks: ``completion = yield from ask_attacker(conv)``."""
    out = yield Call("attacker", [conv], config)
    return out[0]
