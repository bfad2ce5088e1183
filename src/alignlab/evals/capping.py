"""Activation capping: hold the residual stream's projection on the assistant axis above a floor.

During every forward pass, at the axis layer, each position except the first real token of a row
(the BOS / attention sink) and padding is edited as ``h <- h + max(0, tau - <h, u>) u`` with ``u``
the unit axis. ``tau`` defaults to the 25th percentile of the default assistant's per-token
projections, so ordinary assistant text is barely touched and only tokens that fall below the
assistant's usual range are pulled back. The control caps along a seeded random unit direction with
its own ``tau`` at the same percentile of the default assistant's projections on THAT direction.

The experiment: persona-jailbreak prompts (templates x red-team behaviours), generated unmodified,
with the axis cap and with the random cap, judged for attempted compliance and harm.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alignlab.data.behaviors import Behavior
from alignlab.evals.persona import random_unit
from alignlab.evals.persona_acts import Progress, default_conversation, generate_texts
from alignlab.evals.persona_axis import AxisInfo
from alignlab.evals.persona_data import PersonaDataError, PersonaSet
from alignlab.models.base import Message
from alignlab.models.whitebox import hf_parts, hooks


@dataclass(frozen=True)
class CapPrompt:
    """One persona-jailbreak prompt: a behaviour wrapped in a template, as the default assistant gets it."""

    behavior: Behavior
    jailbreak: str
    prompt: str
    conversation: tuple[Message, ...]


def jailbreak_prompts(personas: PersonaSet, behaviors: Sequence[Behavior], limit: int | None = 40,
                      seed: int = 0) -> list[CapPrompt]:
    """``limit`` behaviours stratified by category, each wrapped in a template (templates in turn).

    Raises:
        PersonaDataError: the persona set has no ``persona_jailbreaks``.
    """
    from alignlab.data import filter_behaviors

    jbs = personas.persona_jailbreaks
    if not jbs:
        raise PersonaDataError(personas.source or "personas", "key 'persona_jailbreaks'",
                               "no templates", "add {\"name\", \"template\"} objects with {behavior}")
    chosen = filter_behaviors(behaviors, limit=limit, seed=seed)
    out = []
    for i, b in enumerate(chosen):
        jb = jbs[(i + seed) % len(jbs)]
        text = jb.fill(b.prompt)
        out.append(CapPrompt(b, jb.name, text, tuple(default_conversation(text, personas.default_system))))
    return out


@contextmanager
def cap_projection(model, direction, layer: int, tau: float, counts: dict | None = None,
                   prompt: bool = True) -> Iterator[None]:
    """Within the block, raise ``<h, u>`` to at least ``tau`` at block ``layer`` (BOS and pads untouched).

    Args:
        model: an in-process HF model.
        direction: the direction (made unit here).
        layer: decoder block whose output is capped.
        tau: the floor on the projection.
        counts: if given, ``counts["capped"]``, ``counts["positions"]`` and ``counts["shift"]`` are
            incremented with the positions moved, the positions eligible and the total shift added.
        prompt: cap the prompt's positions too (False: only generated tokens, i.e. forward calls
            of one position per row, as in cached decoding).
    """
    import torch

    from alignlab.interp.steer import unit

    _, lm, _ = hf_parts(model)
    u = unit(direction)
    state: dict = {"mask": None}

    def remember_mask(module, args, kwargs):
        state["mask"] = kwargs.get("attention_mask")

    def edit(hidden):
        uu = u.to(hidden.device, hidden.dtype)
        add = (tau - hidden @ uu).clamp(min=0)  # [b, t]
        t = hidden.shape[1]
        mask = state["mask"]
        if mask is not None and mask.dim() == 2 and mask.shape[0] == hidden.shape[0]:
            m = mask.to(hidden.device).long()
            real = m[:, -t:].bool()
            first = (m.cumsum(1) == 1)[:, -t:] & real  # the first real token of each row
            keep = real & ~first
        else:
            keep = torch.ones_like(add, dtype=torch.bool)
            if t > 1:
                keep[:, 0] = False
        if not prompt and t > 1:
            keep = torch.zeros_like(keep)
        add = add * keep
        if counts is not None:
            counts["capped"] = counts.get("capped", 0) + int((add > 0).sum())
            counts["positions"] = counts.get("positions", 0) + int(keep.sum())
            counts["shift"] = counts.get("shift", 0.0) + float(add.sum())
        return hidden + add[..., None] * uu

    handle = lm.register_forward_pre_hook(remember_mask, with_kwargs=True)
    try:
        with hooks(lm, edit={layer: edit}):
            yield
    finally:
        handle.remove()


def _paired(a: list[bool | None], b: list[bool | None], n_boot: int, seed: int) -> dict:
    from alignlab.stats import bootstrap_diff, mcnemar_p

    pairs = [(int(x), int(y)) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return {"diff": None, "diff_ci": None, "p_value": None, "n": 0, "discordant": [0, 0]}
    xa, xb = [p[0] for p in pairs], [p[1] for p in pairs]
    diff, ci = bootstrap_diff(xa, xb, paired=True, n_boot=n_boot, seed=seed)
    cap_only = sum(1 for x, y in pairs if y and not x)
    none_only = sum(1 for x, y in pairs if x and not y)
    return {"diff": diff, "diff_ci": list(ci), "p_value": mcnemar_p(cap_only, none_only), "n": len(pairs),
            "discordant": [cap_only, none_only], "discordant_order": "[capped only, unmodified only]"}


def capping_experiment(model, axis_info: AxisInfo | str | Path, prompts: Sequence[CapPrompt], judge=None, *,
                       percentile: float = 25.0, max_new_tokens: int = 48, seed: int = 0,
                       on_progress: Progress | None = None, n_examples: int = 8, n_boot: int = 2000,
                       cap_prompt: bool = True, out_dir: str | Path | None = None) -> dict:
    """Persona jailbreaks unmodified, with the axis cap, and with a random-direction cap; judged.

    Args:
        model: an in-process HF model (the one the axis was made on).
        axis_info: an :class:`AxisInfo` or the path of a ``persona.json``.
        prompts: from :func:`jailbreak_prompts`.
        judge: a red-team judge object, or a spec for :func:`alignlab.judges.harm.make_judge`
            (``None``/``heuristic``: the heuristic judge).
        percentile: ``tau`` is this percentile of the default assistant's per-token projections.
        max_new_tokens: greedy reply length.
        seed: seed of the random direction and the bootstraps.
        on_progress: ``(phase, done, total)`` callback.
        n_examples: prompts shown with all three replies (those whose verdicts differ first).
        n_boot: bootstrap resamples.
        cap_prompt: cap the prompt's positions as well as the generated ones (default).
        out_dir: when given, write ``capping.json`` there.

    Returns:
        The ``capping.json`` dict: rates with Wilson CIs per condition, paired differences against
        the unmodified condition with McNemar p-values, tau values and examples.
    """
    import json

    from alignlab.judges.harm import make_judge
    from alignlab.judges.types import JudgeItem
    from alignlab.stats import rate_of

    t0 = time.time()
    hf, _, _ = hf_parts(model)
    axis = axis_info if isinstance(axis_info, AxisInfo) else AxisInfo.load(axis_info)
    axis.check_model(model)
    if not prompts:
        raise ValueError("no capping prompts; raise --limit or check the behaviour set")
    if not 0 <= percentile <= 100:
        raise ValueError(f"--percentile must be in 0..100, got {percentile}")
    judge = judge if hasattr(judge, "judge") else make_judge(judge)
    u_axis = axis.unit.astype(np.float32)
    u_rand = random_unit(len(u_axis), seed)
    tau = float(np.percentile(axis.default_tokens @ u_axis, percentile))
    tau_rand = float(np.percentile(axis.default_tokens @ u_rand, percentile))
    convs = [list(p.conversation) for p in prompts]
    texts: dict[str, list[str]] = {}
    counts: dict[str, dict] = {"axis_cap": {}, "random_cap": {}}
    for k, cond in enumerate(("none", "axis_cap", "random_cap")):
        if on_progress:
            on_progress("capping", k * len(convs), 3 * len(convs))
        if cond == "none":
            texts[cond] = generate_texts(model, convs, max_new_tokens)
        else:
            vec, t = (u_axis, tau) if cond == "axis_cap" else (u_rand, tau_rand)
            with cap_projection(model, vec, axis.layer, t, counts[cond], prompt=cap_prompt):
                texts[cond] = generate_texts(model, convs, max_new_tokens)
    if on_progress:
        on_progress("capping", 3 * len(convs), 3 * len(convs))
        on_progress("judging", 0, 3 * len(convs))
    conds = list(texts)
    items = [JudgeItem(p.behavior.behavior, tuple(dict(m) for m in p.conversation), texts[c][i],
                       p.behavior.category)
             for c in conds for i, p in enumerate(prompts)]
    verdicts = judge.judge(items)
    if on_progress:
        on_progress("judging", len(items), len(items))
    n = len(prompts)
    v = {c: verdicts[j * n:(j + 1) * n] for j, c in enumerate(conds)}
    conditions = {c: {"harmful": rate_of([x.harmful for x in v[c]]).to_dict(),
                      "attempted": rate_of([x.attempted for x in v[c]]).to_dict(),
                      "refused": rate_of([x.refused for x in v[c]]).to_dict()} for c in conds}
    paired = {}
    for c in ("axis_cap", "random_cap"):
        paired[f"{c}_vs_none"] = {
            **_paired([x.harmful for x in v["none"]], [x.harmful for x in v[c]], n_boot, seed),
            "metric": "harmful",
            "attempted": _paired([x.attempted for x in v["none"]], [x.attempted for x in v[c]], n_boot, seed),
        }
    differs = [i for i in range(n) if len({(v[c][i].harmful, v[c][i].attempted) for c in conds}) > 1]
    order = differs + [i for i in range(n) if i not in set(differs)]
    examples = [{"behavior": prompts[i].behavior.behavior, "category": prompts[i].behavior.category,
                 "jailbreak": prompts[i].jailbreak, "prompt": prompts[i].prompt,
                 **{c: texts[c][i] for c in conds},
                 "verdicts": {c: {"harmful": v[c][i].harmful, "attempted": v[c][i].attempted} for c in conds}}
                for i in order[:n_examples]]
    result = {
        "model": hf.identity, "layer": axis.layer, "tau": tau, "tau_random": tau_rand,
        "percentile": percentile, "n": n, "judge": getattr(judge, "name", type(judge).__name__),
        "conditions": conditions, "paired": paired, "examples": examples,
        "cap_active": {c: (counts[c].get("capped", 0) / counts[c]["positions"]) if counts[c].get("positions")
                       else None for c in counts},
        "cap_shift": {c: (counts[c].get("shift", 0.0) / counts[c]["positions"]) if counts[c].get("positions")
                      else None for c in counts},
        "cap_shift_note": "mean shift added per eligible position (residual-stream units; compare with tau and "
                          "the layer's typical norm)",
        "cap_prompt": cap_prompt,
        "cap_active_note": "fraction of eligible positions (all but BOS and padding; the prompt's only "
                           "with cap_prompt) the cap moved",
        "texts_identical_to_none": {c: sum(a == b for a, b in zip(texts["none"], texts[c])) for c in counts},
        "categories": sorted({p.behavior.category for p in prompts}),
        "jailbreaks": sorted({p.jailbreak for p in prompts}), "max_new_tokens": max_new_tokens,
        "random_seed": seed, "seconds": round(time.time() - t0, 1),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "capping.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


__all__ = ["CapPrompt", "cap_projection", "capping_experiment", "jailbreak_prompts", "random_unit"]
