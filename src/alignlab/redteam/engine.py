"""The red-team run: behaviors x attacks through the target, judged, stored and measured.

Every (attack, behavior) stream is committed to the run store as soon as it finishes; a resumed
run skips the streams already stored, so a killed run loses at most the streams in flight.
Randomness comes from a per-stream seed derived from (seed, attack, behavior), so results do not
depend on the order in which streams run or on where a run was resumed.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alignlab import __version__
from alignlab.data.behaviors import Behavior
from alignlab.judges.types import Judge, JudgeItem
from alignlab.models.base import ChatModel, GenerationConfig, user
from alignlab.redteam.driver import drive
from alignlab.redteam.metrics import compute_metrics
from alignlab.redteam.result import RedteamResult
from alignlab.redteam.types import Attack, AttackContext, AttackResult, AttackStream, Attempt, Call
from alignlab.store import Run, Workspace


@dataclass
class RedteamConfig:
    """Settings of a red-team run (snapshotted into the run store)."""

    budget: int = 1
    """Most target queries per (attack, behavior) stream."""
    seed: int = 0
    """Seed for attack randomness and sampling."""
    max_new_tokens: int = 128
    """Target reply length."""
    temperature: float = 0.0
    """Target sampling temperature (0 = greedy)."""
    attacker_max_new_tokens: int = 256
    """Attacker reply length."""
    attacker_temperature: float = 0.7
    """Attacker sampling temperature."""
    benign: bool = True
    """Also send each behavior's benign counterpart once, to measure over-refusal."""
    window: int = 64
    """Streams live at once (the batch the driver fills)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else to record (model specs, file names)."""


def stream_seed(seed: int, attack: str, behavior_id: str) -> int:
    h = hashlib.sha256(f"{seed}|{attack}|{behavior_id}".encode()).hexdigest()
    return int(h[:12], 16)


def _record(behavior: Behavior, attack: Attack, res: AttackResult, budget: int) -> dict[str, Any]:
    return {
        "behavior_id": behavior.id, "behavior": behavior.prompt, "category": behavior.category,
        "attack": attack.name, "kind": attack.kind, "budget": budget,
        "attempts": [a.to_dict() for a in res.attempts],
        "attacker_calls": res.attacker_calls, "notes": res.notes,
    }


def _benign_stream(b: Behavior) -> AttackStream:
    """Send the benign counterpart once and judge it (its ``refused`` gives over-refusal)."""
    conv = user(b.benign)
    comp = (yield Call("target", [conv]))[0]
    verdict = (yield Call("judge", [JudgeItem(b.benign, tuple(dict(m) for m in conv), comp.text,
                                              b.category)]))[0]
    return AttackResult(attempts=[Attempt([dict(m) for m in conv], comp.text, verdict,
                                          comp.completion_tokens, comp.prompt_tokens, comp.meta)])


def run_redteam(
    target: ChatModel,
    judge: Judge,
    behaviors: Sequence[Behavior],
    attacks: Sequence[Attack],
    workspace: Workspace,
    config: RedteamConfig | None = None,
    attacker: ChatModel | None = None,
    resume: str | None = None,
    out_dir: str | Path | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> RedteamResult:
    """Run (or resume) a red-team; its results.json and hits.jsonl go to ``out_dir``.

    The HTML report is the caller's: ``result.save(dir)`` (or ``alignlab.run_redteam``, the CLI and
    the lab) writes it.

    Args:
        target: the model under test.
        judge: decides refused / attempted / harmful for each target reply.
        behaviors: what to elicit (evaluation data: never used to generate attacks' training).
        attacks: attack objects (see ``alignlab.redteam.attacks``).
        workspace: run store.
        config: budgets, seed and generation settings.
        attacker: helper model for LLM-driven attacks.
        resume: a run id to continue; its stored config is used and finished streams are skipped.
        out_dir: where results.json and hits.jsonl go (default: the run's artifacts).
        on_progress: ``(phase, done, total)`` callback for progress bars.
    """
    config = config or RedteamConfig()
    snapshot = {
        "target": target.identity, "judge": judge.name,
        "attacker": attacker.identity if attacker else None,
        "attacks": [a.name for a in attacks], "behaviors": [b.id for b in behaviors],
        "budget": config.budget, "seed": config.seed, "max_new_tokens": config.max_new_tokens,
        "temperature": config.temperature, "attacker_max_new_tokens": config.attacker_max_new_tokens,
        "attacker_temperature": config.attacker_temperature, "benign": config.benign,
        **config.extra,
    }
    run = workspace.start_run("redteam", snapshot, resume,
                              must_match=("attacks", "behaviors", "budget", "seed", "target"))
    t0 = time.time()
    try:
        results = _execute(run, target, judge, behaviors, attacks, config, attacker, on_progress)
    except BaseException as e:
        run.fail(f"{type(e).__name__}: {e}")
        raise
    results["duration_s"] = time.time() - t0
    out = Path(out_dir) if out_dir else run.artifacts
    res = RedteamResult(results, hits_of(run), out, examples=examples_of(run))
    res.write_data(out)
    run.finish({k: results[k] for k in ("asr", "asr_ci", "compliance_rate", "n_behaviors",
                                        "n_unscorable")} | {"out_dir": str(out.resolve())})
    return res


def _execute(run: Run, target, judge, behaviors, attacks, config, attacker, on_progress):
    done = run.done_keys()
    by_id = {b.id: b for b in behaviors}
    if len(by_id) != len(behaviors):
        raise ValueError("behavior ids must be unique")
    tcfg = GenerationConfig(max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                            seed=config.seed if config.temperature > 0 else None)
    acfg = GenerationConfig(max_new_tokens=config.attacker_max_new_tokens,
                            temperature=config.attacker_temperature, seed=config.seed)
    for a in attacks:
        if a.kind == "llm" and attacker is None:
            raise ValueError(f"attack {a.name!r} needs an attacker model: pass --attacker SPEC")
    jobs: list[tuple[str, Behavior, Attack | None]] = []
    if config.benign:
        jobs += [(f"benign|{b.id}", b, None) for b in behaviors if b.benign]
    jobs += [(f"attack|{a.name}|{b.id}", b, a) for a in attacks for b in behaviors]
    todo = [j for j in jobs if j[0] not in done]
    total, finished = len(jobs), len(jobs) - len(todo)
    if on_progress:
        on_progress("streams", finished, total)
    info = {j[0]: j for j in todo}

    def streams():
        for key, b, a in todo:
            if a is None:
                yield key, _benign_stream(b)
            else:
                rng = random.Random(stream_seed(config.seed, a.name, b.id))
                ctx = AttackContext(budget=config.budget, rng=rng, target_config=tcfg,
                                    attacker_config=acfg, has_attacker=attacker is not None)
                yield key, a.stream(b, ctx)

    def on_done(key, res: AttackResult) -> None:
        nonlocal finished
        _, b, a = info[key]
        if a is None:
            att = res.attempts[0]
            run.add(key, {"behavior_id": b.id, "category": b.category, "prompt": b.benign,
                          "response": att.response, "verdict": att.verdict.to_dict(),
                          **({"meta": att.meta} if att.meta else {})})
        else:
            run.add(key, _record(b, a, res, config.budget))
        finished += 1
        if on_progress:
            on_progress("streams", finished, total)

    drive(streams(), target, judge, attacker=attacker, target_config=tcfg, attacker_config=acfg,
          on_done=on_done, window=config.window)
    records = [d for _, d in run.records("attack|")]
    benign = [d for _, d in run.records("benign|")]
    attack_info = {a.name: {"kind": a.kind, "description": a.description} for a in attacks}
    metrics = compute_metrics(records, benign if config.benign else None, attack_info)
    meta = run.info
    return {
        "run_id": run.id, "stage": "redteam",
        "created": datetime.fromtimestamp(meta.created, UTC).isoformat(timespec="seconds"),
        "alignlab_version": __version__, "target": meta.config["target"],
        "attacker": meta.config.get("attacker"), "judge": meta.config["judge"],
        "config": meta.config, **metrics,
        "judge_caveat": getattr(judge, "caveat", None),
    }


def hits_of(run: Run) -> list[dict[str, Any]]:
    """Every attempt judged harmful, as hits.jsonl rows."""
    hits = []
    for _, r in run.records("attack|"):
        for i, a in enumerate(r["attempts"]):
            if a["verdict"].get("harmful") is True:
                hits.append({"behavior_id": r["behavior_id"], "behavior": r["behavior"],
                             "category": r["category"], "attack": r["attack"], "attempt": i,
                             "conversation": a["conversation"], "response": a["response"],
                             "verdict": a["verdict"]})
    return hits


def examples_of(run: Run, per_kind: int = 12) -> list[dict[str, Any]]:
    """A few non-hit attempts to read: attempted-but-not-harmful, refusals, unscorable."""
    buckets: dict[str, list[dict]] = {"attempted, not harmful": [], "refused": [], "unscorable": []}
    for _, r in run.records("attack|"):
        for i, a in enumerate(r["attempts"]):
            v = a["verdict"]
            kind = ("unscorable" if v.get("harmful") is None else
                    "attempted, not harmful" if v.get("attempted") and not v.get("harmful") else
                    "refused" if v.get("refused") else None)
            if kind and len(buckets[kind]) < per_kind:
                buckets[kind].append({"behavior_id": r["behavior_id"], "behavior": r["behavior"],
                                      "category": r["category"], "attack": r["attack"], "attempt": i,
                                      "conversation": a["conversation"], "response": a["response"],
                                      "verdict": v, "kind": kind})
    return [e for b in buckets.values() for e in b]
