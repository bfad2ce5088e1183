"""Drive many attack streams at once, batching their model calls per role.

Each stream is a generator that yields ``Call`` objects. In each round the driver collects the
pending call of every live stream, sends all target calls to the target in one batched
``generate`` (same for the attacker, and one batched ``judge`` for the judge), and resumes each
stream with its slice of the results. Streams finish by returning an ``AttackResult``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

from alignlab.errors import AlignlabError
from alignlab.judges.types import Judge
from alignlab.models.base import ChatModel, GenerationConfig
from alignlab.redteam.types import AttackResult, AttackStream, Call


class MissingRole(AlignlabError, RuntimeError):
    pass


def drive(
    streams: Iterable[tuple[Hashable, AttackStream]],
    target: ChatModel,
    judge: Judge,
    attacker: ChatModel | None = None,
    target_config: GenerationConfig | None = None,
    attacker_config: GenerationConfig | None = None,
    on_done: Callable[[Hashable, AttackResult], None] | None = None,
    window: int = 64,
) -> dict[Hashable, AttackResult]:
    """Run streams to completion; ``on_done(key, result)`` is called as each one finishes.

    At most ``window`` streams are live at once; as streams finish, new ones start, so results
    are delivered (and can be committed) steadily rather than all at the end. Calls with an
    explicit ``config`` are batched separately from calls using the default.
    """
    results: dict[Hashable, AttackResult] = {}
    pending: dict[Hashable, Call] = {}
    live: dict[Hashable, AttackStream] = {}
    source = iter(streams)

    def refill() -> None:
        while len(live) < window:
            try:
                key, gen = next(source)
            except StopIteration:
                return
            if key in live or key in results:
                raise ValueError(f"duplicate stream key {key!r}")
            live[key] = gen
            advance(key, None)

    def advance(key: Hashable, value: Any) -> None:
        gen = live[key]
        try:
            call = gen.send(value)
        except StopIteration as stop:
            res = stop.value if isinstance(stop.value, AttackResult) else AttackResult()
            results[key] = res
            pending.pop(key, None)
            live.pop(key, None)
            if on_done:
                on_done(key, res)
            return
        if not isinstance(call, Call):
            raise TypeError(f"attack stream {key!r} yielded {type(call).__name__}, expected Call")
        pending[key] = call

    refill()
    while pending:
        groups: dict[tuple[str, Any], list[Hashable]] = defaultdict(list)
        for key, call in pending.items():
            groups[(call.role, call.config)].append(key)
        for (role, config), keys in groups.items():
            flat: list[Any] = []
            sizes: list[int] = []
            for k in keys:
                flat.extend(pending[k].payload)
                sizes.append(len(pending[k].payload))
            out: Sequence[Any]
            if role == "target":
                out = target.generate(flat, config or target_config)
            elif role == "attacker":
                if attacker is None:
                    raise MissingRole("this attack needs an attacker model; pass --attacker SPEC")
                out = attacker.generate(flat, config or attacker_config)
            elif role == "judge":
                out = judge.judge(flat)
            else:
                raise ValueError(f"unknown role {role!r}")
            i = 0
            for k, n in zip(keys, sizes):
                chunk = list(out[i:i + n])
                i += n
                advance(k, chunk)
        refill()
    return results
