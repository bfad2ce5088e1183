"""GuardedModel: a target wrapped by a guard, itself a ChatModel.

Order of checks for each conversation:
1. input classifier on the conversation (embedding head, or the probe on the target's prompt
   activations read off the prefill, so it costs no extra forward pass);
2. streaming output classifier every ``chunk_tokens`` generated tokens and when the reply ends;
   when it fires, generation of that row stops at once (in-process targets) and the reply
   becomes the refusal message;
3. optionally the exchange classifier on (conversation, full reply).

A guard that raises fails closed: the request is refused and the error is recorded. Each reply's
``meta["guard"]`` says whether it was blocked, by which classifier and backbone, the score and
threshold, and the tokens generated before a streaming block.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from alignlab.guard.guard import Decision, Guard
from alignlab.models.base import ChatModel, Completion, GenerationConfig, Message, ProgressFn

STAGES = ("input", "output", "exchange")


class GuardedModel(ChatModel):
    """``target`` behind ``guard``.

    Args:
        target: any ChatModel (probe and cascade guards need the in-process HF target they were
            trained on).
        guard: a loaded :class:`~alignlab.guard.guard.Guard`.
        stages: which classifiers to apply (default input and streaming output).
        refusal_message: the reply when a guard fires (default: the guard's).
        chunk_tokens: streaming check interval (default: the guard's).
        shadow: run every check and record its decision, but never stop a row or replace a reply
            (the guard's cost on exactly the tokens the unguarded target generates).
    """

    def __init__(self, target: ChatModel, guard: Guard, stages: Sequence[str] = ("input", "output"),
                 refusal_message: str | None = None, chunk_tokens: int | None = None,
                 shadow: bool = False) -> None:
        from alignlab.models.hf import HFModel

        bad = [s for s in stages if s not in STAGES]
        if bad:
            raise ValueError(f"unknown guard stage(s) {bad}; choose from {STAGES}")
        self.target = target
        self.guard = guard
        prefix = "probe" if guard.uses_probe else "embed"
        self.skipped = tuple(s for s in stages if s in ("input", "output") and not guard.has(f"{prefix}.{s}"))
        """Stages asked for that this guard has no classifier for (recorded, not applied)."""
        self.stages = tuple(s for s in stages if s not in self.skipped)
        if "exchange" in self.stages and not guard.has("embed.exchange"):
            raise ValueError("this guard has no exchange classifier (train with --backbone embed or cascade)")
        self.refusal_message = refusal_message or guard.refusal_message
        self.chunk_tokens = chunk_tokens or guard.chunk_tokens
        self.white_box = isinstance(target, HFModel)
        guard.check_target(target)
        self.shadow = shadow
        self.stats: dict[str, float] = {"guard_seconds": 0.0, "checks": 0, "escalated": 0}

    @property
    def identity(self) -> str:
        mode = "|shadow" if self.shadow else ""
        return f"guarded[{self.guard.id}|{'+'.join(self.stages)}|{self.chunk_tokens}{mode}]({self.target.identity})"

    # ------------------------------------------------------------------ checks (fail closed)
    def _safely(self, n: int, stage: str, fn: Callable[[], list[Decision]]) -> list[Decision]:
        t0 = time.perf_counter()
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - any guard failure refuses the request
            out = [Decision(blocked=True, by=stage, error=f"{type(e).__name__}: {e}") for _ in range(n)]
        self.stats["guard_seconds"] += time.perf_counter() - t0
        self.stats["checks"] += n
        self.stats["escalated"] += sum(d.escalated for d in out)
        return out

    def _output(self, texts: list[str], pooled) -> list[Decision]:
        g = self.guard
        if g.uses_probe:
            if pooled is None:
                return [Decision() for _ in texts]
            return g.decide_probe("output", pooled,
                                  lambda idx: g.embedder.output_features([texts[i] for i in idx]))
        return g.decide_embed("output", g.embedder.output_features(texts))

    # ------------------------------------------------------------------ generation
    def generate(self, conversations: Sequence[Sequence[Message]], config: GenerationConfig | None = None,
                 progress: ProgressFn | None = None) -> list[Completion]:
        convs = [list(c) for c in conversations]
        n = len(convs)
        decisions = [Decision() for _ in range(n)]
        if "input" in self.stages and not self.guard.uses_probe:
            for i, d in enumerate(self._safely(n, "input", lambda: self.guard.input_decisions_embed(convs))):
                decisions[i] = d
        passing = [i for i in range(n) if self.shadow or not decisions[i].blocked]
        if progress and n - len(passing):
            progress(n - len(passing))
        comps: dict[int, Completion] = {}
        if passing:
            sub = [convs[i] for i in passing]
            if self.white_box:
                monitor = _Monitor(self, sub, passing, decisions)
                outs = self.target.generate(sub, config, progress, monitor=monitor)  # type: ignore[call-arg]
            else:
                outs = self.target.generate(sub, config, progress)
                if "output" in self.stages:
                    self._posthoc_output(passing, outs, decisions)
            comps = dict(zip(passing, outs))
        if "exchange" in self.stages:
            todo = [i for i in passing if not decisions[i].blocked and comps[i].ok]
            if todo:
                g = self.guard
                ds = self._safely(len(todo), "exchange", lambda: g.decide_embed(
                    "exchange", g.embedder.exchange_features([convs[i] for i in todo],
                                                             [comps[i].text for i in todo])))
                for i, d in zip(todo, ds):
                    if d.blocked:
                        d.at_token = comps[i].completion_tokens
                        decisions[i] = d
        result = []
        for i in range(n):
            d = decisions[i]
            c = comps.get(i)
            if d.blocked and not self.shadow:
                if d.by == "input":
                    d.at_token = 0
                result.append(Completion(
                    text=self.refusal_message, prompt_tokens=c.prompt_tokens if c else 0,
                    completion_tokens=c.completion_tokens if c else 0, finish_reason="stop",
                    meta={"guard": d.to_dict()}))
            else:
                assert c is not None
                c.meta = {**(c.meta or {}), "guard": d.to_dict()}
                result.append(c)
        return result

    def _posthoc_output(self, passing, outs, decisions) -> None:
        """Black-box targets: apply the streaming check to word chunks of the finished reply."""
        from alignlab.guard.features import stream_cuts

        for k, comp in enumerate(outs):
            if not comp.ok:
                continue
            cuts, prefixes = stream_cuts(comp.text, self.chunk_tokens)
            ds = self._safely(len(prefixes), "output", functools.partial(self._output, prefixes, None))
            for cut, d in zip(cuts, ds):
                if d.blocked:
                    d.at_token = cut
                    d.unit = "words"
                    decisions[passing[k]] = d
                    break

    def close(self) -> None:
        self.target.close()


class _Monitor:
    """Reads the target's activations during generation and stops rows a guard flags."""

    def __init__(self, gm: GuardedModel, sub: list, passing: list[int], decisions: list[Decision]) -> None:
        self.gm = gm
        self.sub = sub
        self.passing = passing
        self.decisions = decisions
        self.layers = gm.guard.layers if gm.guard.uses_probe else ()
        self.every = gm.chunk_tokens if "output" in gm.stages else 0

    def on_prompt(self, rows: list[int], pooled: Any) -> list[bool]:
        gm, g = self.gm, self.gm.guard
        if "input" not in gm.stages or not g.uses_probe:
            return [False] * len(rows)
        ds = gm._safely(len(rows), "input", lambda: g.decide_probe(
            "input", pooled, lambda idx: g.embedder.input_features([self.sub[rows[i]] for i in idx])))
        for r, d in zip(rows, ds):
            if d.blocked:
                d.at_token = 0
                self.decisions[self.passing[r]] = d
        return [d.blocked and not gm.shadow for d in ds]

    def on_output(self, rows: list[int], texts: list[str], pooled: Any, n_tokens: list[int]) -> list[bool]:
        gm = self.gm
        if "output" not in gm.stages:
            return [False] * len(rows)
        ds = gm._safely(len(rows), "output", lambda: gm._output(texts, pooled))
        for r, d, k in zip(rows, ds, n_tokens):
            if d.blocked and not self.decisions[self.passing[r]].blocked:
                d.at_token = k
                self.decisions[self.passing[r]] = d
        return [d.blocked and not gm.shadow for d in ds]
