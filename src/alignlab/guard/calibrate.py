"""Calibrate a trained guard's thresholds on benign traffic it has never seen, without retraining.

Training sets each head's threshold on out-of-fold scores of the constitution's permitted
examples. Those thresholds do not transfer to benign traffic of another kind: on the packaged
borderline prompts (harmless requests that sound alarming) they refused a quarter to a third of
them. ``calibrate_guard`` scores a set of benign prompts the way the guard would see them (the
request, then the target's own reply at each streaming check), keeps the scores in the guard
directory, and raises each head's threshold to the level that blocks at most ``fpr`` of them.
Thresholds only rise: a few dozen calibration prompts may add a constraint, but they are too few to
justify a lower threshold than training's.

The packaged borderline set is split in two by a hash of each prompt's id: the calibration half
is used here, the evaluation half by ``guard eval`` and the lab; the two never meet (asserted by
``guard eval``'s leakage check, which reads the calibration prompts stored in the guard directory).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.guard.guard import Guard
from alignlab.heads import threshold_at_fpr
from alignlab.models.base import ChatModel, GenerationConfig, user

SCORES_FILE = "calibration_scores.json"


def benign_scores(guard: Guard, target: ChatModel, prompts: Sequence[str], max_new_tokens: int = 64,
                  progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Each head's score on each prompt, as the guard would see it: the request, and the maximum
    over the streaming checks of the target's greedy reply (its running mean every
    ``chunk_tokens`` tokens for probes; word-cut prefixes for embedding heads)."""
    from alignlab.guard.features import stream_cuts

    convs = [user(p) for p in prompts]
    step = progress or (lambda *a: None)
    step("calibration replies", 0, len(convs))
    outs = target.generate(convs, GenerationConfig(max_new_tokens=max_new_tokens))
    replies = [o.text if o.ok else "" for o in outs]
    step("calibration replies", len(convs), len(convs))
    scores: dict[str, list[float]] = {}
    if guard.uses_probe:
        from alignlab.guard.features import ActivationFeatures

        af = ActivationFeatures(target, guard.layers)
        xin, per = af.input_and_output_features(convs, replies, guard.chunk_tokens)
        scores["probe.input"] = guard.heads["probe.input"].score(xin).tolist()
        if guard.has("probe.output"):
            h = guard.heads["probe.output"]
            scores["probe.output"] = [float(h.score(p).max()) if len(p) else float("-inf") for p in per]
    if guard.uses_embed:
        emb = guard.embedder
        scores["embed.input"] = guard.heads["embed.input"].score(emb.input_features(convs)).tolist()
        if guard.has("embed.output"):
            streams = [stream_cuts(r, guard.chunk_tokens)[1] for r in replies]
            flat = [p for st in streams for p in st]
            s = guard.heads["embed.output"].score(emb.output_features(flat)) if flat else np.zeros(0)
            offs = np.cumsum([0] + [len(st) for st in streams])
            scores["embed.output"] = [float(s[offs[i]:offs[i + 1]].max()) for i in range(len(streams))]
        if guard.has("embed.exchange"):
            scores["embed.exchange"] = guard.heads["embed.exchange"].score(
                emb.exchange_features(convs, replies)).tolist()
    step("calibration scores", len(convs), len(convs))
    return {"target": target.identity, "max_new_tokens": max_new_tokens, "prompts": list(prompts),
            "replies": replies, "scores": scores}


def would_block(guard: Guard, scores: dict[str, list[float]],
                stages: Sequence[str] = ("input", "output")) -> np.ndarray:
    """Which calibration prompts the guard's current thresholds would refuse (input or output stage).

    Exact for embed and probe guards on these scores; for the cascade it is an upper bound (a
    prompt counts when the probe blocks or the embedding head would, escalated or not).
    """
    n = len(next(iter(scores.values()))) if scores else 0
    out = np.zeros(n, bool)
    for stage in stages:
        for key in (f"probe.{stage}", f"embed.{stage}"):
            if key not in scores or key not in guard.heads:
                continue
            thr = guard.bands[stage][1] if key.startswith("probe") and guard.backbone == "cascade" \
                else guard.heads[key].threshold
            out |= np.asarray(scores[key]) > thr
    return out


def guard_fingerprint(guard: Guard) -> str:
    """A hash of what decides a guard's scores (backbone, layers, check interval, head weights);
    thresholds are left out, so calibrating does not change it but retraining does."""
    h = hashlib.sha256(json.dumps([guard.backbone, list(guard.layers), guard.chunk_tokens, guard.target,
                                   sorted(guard.heads)]).encode())
    for k in sorted(guard.heads):
        hd = guard.heads[k]
        for arr in (hd.mean, hd.scale, hd.coef, np.array([hd.intercept])):
            h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    return h.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _check(guard: Guard, target: ChatModel, prompts: Sequence[str], fpr: float) -> None:
    """One clear line for every way a calibration cannot be valid."""
    from alignlab.guard.data import LeakageError, assert_disjoint
    from alignlab.guard.leakage import training_requests

    if not guard.path:
        raise ValueError("calibrate a guard loaded from its directory (alignlab guard train --out DIR)")
    if not 0 <= fpr < 1:
        raise ValueError(f"fpr must be in [0, 1), got {fpr}")
    if len(prompts) < 10:
        raise ValueError(f"calibration needs at least 10 benign prompts, got {len(prompts)}")
    need = (["probe.input"] if guard.uses_probe else []) + (["embed.input"] if guard.uses_embed else [])
    missing = [k for k in need if k not in guard.heads]
    if missing:
        raise ValueError(f"{guard.path}/config.json: the guard has no {', '.join(missing)} head; retrain it")
    guard.check_target(target)
    try:
        assert_disjoint(training_requests(guard) or [], prompts, "calibration")
    except LeakageError as e:
        raise LeakageError(f"{e}: calibrate on benign prompts the guard was not trained on "
                           f"(a guard trained with --borderline-negatives already learned from "
                           f"the default calibration half; pass --benign FILE)") from None


def calibrate_guard(guard: Guard, target: ChatModel, prompts: Sequence[str], fpr: float = 0.01,
                    source: str = "", max_new_tokens: int = 96, reuse: bool = True,
                    progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Raise each head's threshold to block at most ``fpr`` of ``prompts``; save the guard.

    Scores are stored in the guard directory (``calibration_scores.json``) and reused when the
    guard's heads, the prompts, the target and the reply length are the same, so a new ``fpr``
    costs no generation. The training thresholds are kept in
    ``config["calibration"]["trained_thresholds"]`` and every calibration starts from them, so
    calibrating twice does not ratchet. Only ``config.json`` is rewritten (atomically).

    Raises:
        ValueError, LeakageError, WhiteBoxRequired: one line saying what is wrong (a prompt the
        guard trained on, a probe guard given another or a black-box target, too few prompts).

    Returns the calibration record (also written to the guard's ``config.json``).
    """
    _check(guard, target, prompts, fpr)
    d = Path(guard.path)
    fp = guard_fingerprint(guard)
    cached = None
    if reuse and (d / SCORES_FILE).exists():
        try:
            c = json.loads((d / SCORES_FILE).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            c = {}  # a torn file: score again
        if c.get("guard") == fp and c.get("prompts") == list(prompts) and c.get("target") == target.identity \
                and c.get("max_new_tokens") == max_new_tokens:
            cached = c
    data = cached or {**benign_scores(guard, target, prompts, max_new_tokens, progress), "guard": fp}
    if cached is None:
        _write_atomic(d / SCORES_FILE, json.dumps(data))
    scores = {k: v for k, v in data["scores"].items() if k in guard.heads}
    prev = guard.config.get("calibration") or {}
    trained = prev.get("trained_thresholds") or {k: h.threshold for k, h in guard.heads.items()}
    trained_bands = prev.get("trained_bands") or {k: list(v) for k, v in guard.bands.items()}
    for k, h in guard.heads.items():
        h.threshold = float(trained.get(k, h.threshold))
    guard.bands = {k: list(v) for k, v in trained_bands.items()}
    before = would_block(guard, scores)
    changes = {}
    for key, vals in scores.items():
        finite = [v for v in vals if np.isfinite(v)]
        if not finite:
            continue
        old = float(trained.get(key, guard.heads[key].threshold))
        new = max(old, threshold_at_fpr(finite, fpr))
        guard.heads[key].threshold = new
        stage = key.split(".")[1]
        if key.startswith("probe.") and guard.backbone == "cascade" and stage in guard.bands:
            lo, _ = trained_bands[stage]
            guard.bands[stage] = [min(lo, new), new]
        changes[key] = {"trained": old, "calibrated": new, "raised": new > old,
                        "benign_block_rate_trained": float(np.mean(np.asarray(vals) > old)),
                        "benign_block_rate": float(np.mean(np.asarray(vals) > new))}
    after = would_block(guard, scores)
    record = {"source": source, "n": len(prompts), "fpr": fpr, "max_new_tokens": max_new_tokens,
              "target": data["target"], "heads": changes,
              "blocked_before": int(before.sum()), "blocked_after": int(after.sum()),
              # Probes see the same token running means live; embedding heads are scored on
              # word-cut prefixes, the live in-process check on token prefixes; the cascade's
              # union over its heads bounds it from above.
              "exact": guard.backbone == "probe",
              "trained_thresholds": trained, "trained_bands": trained_bands, "prompts": list(prompts)}
    guard.config["calibration"] = record
    cfg_path = d / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["thresholds"] = {k: h.threshold for k, h in guard.heads.items()}
    cfg["bands"] = guard.bands
    cfg["calibration"] = record
    _write_atomic(cfg_path, json.dumps(cfg, indent=2))
    return record
