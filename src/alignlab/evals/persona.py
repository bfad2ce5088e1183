"""Persona space: response activations, trait directions, role personas and the assistant axis.

After the persona-vectors paper (Chen et al. 2025) and the "assistant axis" work:

* a **response activation** is the mean of the block-``L`` output over the tokens of an assistant
  reply (not the prompt, not the end-of-turn token), read with the reply in its conversation;
* a **trait direction** is ``mean(acts | positive system prompt) - mean(acts | negative prompt)``
  over the replies to the EXTRACTION questions; it is measured on the held-out TEST questions;
* the **assistant axis** is ``mean(default assistant) - mean over role personas of their means``.
  Positions on it use the scale "1 = the default assistant's mean, 0 = the mean of the role
  personas' means" (:meth:`AxisInfo.position`).

This module extracts them (:func:`persona_map`) and checks each trait direction by steering
along it (:func:`steering_check`). Reading replies and activations is in
:mod:`~alignlab.evals.persona_acts`, the axis and positions on it in
:mod:`~alignlab.evals.persona_axis`.

White-box only: every function here needs an in-process HF model and raises
:class:`~alignlab.models.base.WhiteBoxRequired` otherwise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.evals.persona_acts import (
    Progress,
    default_conversation,
    default_layer,
    generate_texts,
    response_activations,
    response_token_activations,
)
from alignlab.evals.persona_axis import DIRECTIONS_FILE, SCALE, AxisInfo
from alignlab.evals.persona_data import PersonaSet
from alignlab.evals.persona_score import TraitScorer, auroc, auroc_ci, gap_sd, make_scorer, mean_ci, slope, slope_ci
from alignlab.models.base import Message
from alignlab.models.whitebox import check_layers, hf_parts, n_layers

RESPONSES_FILE = "persona_responses.jsonl"
"""Every reply persona map generated (kind, name, split, question index, conversation, response)."""
MAX_DEFAULT_TOKENS = 4096


# ----------------------------------------------------------------------------------------- the map
@dataclass
class _Item:
    kind: str  # "trait+", "trait-", "role", "default"
    name: str
    split: str  # "ext" or "test"
    q: int
    conv: list[Message]
    text: str = ""


def _pca(points: np.ndarray, axis: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, components [k, d], explained variance ratios)`` of the centred points; PC1's sign is
    chosen so that it points along the axis."""
    mean = points.mean(0)
    _, s, vt = np.linalg.svd(points - mean, full_matrices=False)
    var = s ** 2
    ratio = var / var.sum() if var.sum() > 0 else var
    if vt[0] @ axis < 0:
        vt[0] = -vt[0]
    return mean, vt[:k], ratio[:k]


def persona_map(model, personas: PersonaSet, layer: int | None = None, *, max_new_tokens: int = 48,
                coefficients: Sequence[float] = (-0.5, -0.25, 0.0, 0.25, 0.5),
                scorer: str | TraitScorer | None = "embedding", steer_check: bool = True,
                out_dir: str | Path | None = None, on_progress: Progress | None = None,
                n_boot: int = 2000, seed: int = 0) -> dict:
    """Trait directions, role personas and the assistant axis of a model, with held-out checks.

    Args:
        model: an in-process HF model.
        personas: traits, roles, extraction and test questions (:func:`load_personas`).
        layer: decoder block to read (default: about 2/3 depth).
        max_new_tokens: length of every greedy reply.
        coefficients: steering strengths in units of the layer's typical per-token norm.
        scorer: the text-only trait scorer for the steering check (``embedding``, ``judge:SPEC``).
        steer_check: run the steering check (it costs a generation per trait and coefficient).
        out_dir: when given, write ``persona.json``, ``directions.safetensors`` and every reply
            (``persona_responses.jsonl``) there.
        on_progress: ``(phase, done, total)`` callback.
        n_boot: bootstrap resamples for the intervals.
        seed: seed of the bootstraps and of the default-token sample.

    Returns:
        The ``persona.json`` dict (traits with AUROC and steering, axis, PCA points).
    """
    t0 = time.time()
    hf, lm, _ = hf_parts(model)
    layer = default_layer(model) if layer is None else layer
    check_layers(lm, [layer], "--layer")
    ps = personas
    if not ps.roles:
        raise ValueError(f"{ps.source or 'personas'}: the assistant axis needs at least one role")
    items: list[_Item] = []
    for split, qs in (("ext", ps.extraction_questions), ("test", ps.test_questions)):
        for qi, q in enumerate(qs):
            items.append(_Item("default", "default", split, qi, default_conversation(q, ps.default_system)))
            for t in ps.traits:
                items.append(_Item("trait+", t.name, split, qi, [{"role": "system", "content": t.positive},
                                                                 {"role": "user", "content": q}]))
                items.append(_Item("trait-", t.name, split, qi, [{"role": "system", "content": t.negative},
                                                                 {"role": "user", "content": q}]))
            for r in ps.roles:
                items.append(_Item("role", r.name, split, qi, [{"role": "system", "content": r.system},
                                                               {"role": "user", "content": q}]))
    texts = generate_texts(model, [it.conv for it in items], max_new_tokens, on_progress, "persona replies")
    for it, text in zip(items, texts):
        it.text = text
    if on_progress:
        on_progress("activations", 0, 2)
    tok_acts = response_token_activations(model, [it.conv for it in items], texts, [layer])[layer]
    acts = np.stack([a.mean(0).numpy() for a in tok_acts])
    # Held-out replies read again in the default assistant's context (no persona prompt): does the
    # direction read the reply itself, or the system prompt it was written under?
    test_idx = [i for i, it in enumerate(items) if it.split == "test" and it.kind != "default"]
    dconv = [default_conversation(ps.test_questions[items[i].q], ps.default_system) for i in test_idx]
    dc = response_activations(model, dconv, [items[i].text for i in test_idx], [layer])[layer]
    acts_dc = {i: dc[r] for r, i in enumerate(test_idx)}
    if on_progress:
        on_progress("activations", 2, 2)

    def sel(kind: str, name: str, split: str) -> list[int]:
        return [i for i, it in enumerate(items) if it.kind == kind and it.name == name and it.split == split]

    default_ext = sel("default", "default", "ext")
    default_mean = acts[default_ext].mean(0)
    default_tokens = np.concatenate([tok_acts[i].numpy() for i in default_ext])
    typical = float(np.median(np.linalg.norm(default_tokens, axis=1)))
    rng = np.random.default_rng(seed)
    if len(default_tokens) > MAX_DEFAULT_TOKENS:
        default_tokens = default_tokens[np.sort(rng.choice(len(default_tokens), MAX_DEFAULT_TOKENS, replace=False))]
    role_means = np.stack([acts[sel("role", r.name, "ext")].mean(0) for r in ps.roles])
    origin = role_means.mean(0)
    axis = default_mean - origin
    if not np.linalg.norm(axis) > 0:
        raise ValueError("the default assistant and the role personas have the same mean; no axis")

    traits_out: list[dict[str, Any]] = []
    directions: dict[str, np.ndarray] = {}
    for t in ps.traits:
        d = acts[sel("trait+", t.name, "ext")].mean(0) - acts[sel("trait-", t.name, "ext")].mean(0)
        directions[t.name] = d
        u = d / (np.linalg.norm(d) or 1.0)
        pos_i, neg_i = sel("trait+", t.name, "test"), sel("trait-", t.name, "test")
        pos, neg = acts[pos_i] @ u, acts[neg_i] @ u
        pos_dc = np.array([acts_dc[i] for i in pos_i]) @ u
        neg_dc = np.array([acts_dc[i] for i in neg_i]) @ u
        traits_out.append({
            "name": t.name, "description": t.description,
            "auroc": auroc(pos, neg), "auroc_ci": list(auroc_ci(pos, neg, n_boot, seed)),
            "gap_sd": gap_sd(pos, neg), "n_test": len(pos_i),
            "auroc_default_context": auroc(pos_dc, neg_dc),
            "auroc_default_context_ci": list(auroc_ci(pos_dc, neg_dc, n_boot, seed)),
            "gap_sd_default_context": gap_sd(pos_dc, neg_dc),
            "direction_norm": float(np.linalg.norm(d)), "direction_norm_typical": float(np.linalg.norm(d)) / typical,
        })

    names = ["default", *[r.name for r in ps.roles], *[t.name for t in ps.traits], *[t.name for t in ps.traits]]
    kinds = ["default", *["role"] * len(ps.roles), *["trait+"] * len(ps.traits), *["trait-"] * len(ps.traits)]
    pts = np.stack([default_mean, *role_means,
                    *[acts[sel("trait+", t.name, "ext")].mean(0) for t in ps.traits],
                    *[acts[sel("trait-", t.name, "ext")].mean(0) for t in ps.traits]])
    pca_mean, comps, ratio = _pca(pts, axis)
    pcs = np.stack([comps[0], comps[1] if len(comps) > 1 else np.zeros_like(comps[0])])
    info = AxisInfo(hf.identity, layer, axis, origin, default_tokens, pca_mean, pcs, directions,
                    ps.default_system)
    xy = info.pc_coords(pts)
    pos_axis = info.position(pts)
    points = [{"name": n, "kind": k, "x": float(p[0]), "y": float(p[1]), "axis": float(a)}
              for n, k, p, a in zip(names, kinds, xy, pos_axis)]
    role_test = [i for r in ps.roles for i in sel("role", r.name, "test")]
    d_test = info.position(acts[sel("default", "default", "test")])
    r_test = info.position(acts[role_test])
    r_test_dc = info.position(np.array([acts_dc[i] for i in role_test]))
    axis_out = {
        "cos_pc1": float(comps[0] @ axis / np.linalg.norm(axis)),
        "cos_pc1_sign": "PC1 sign chosen to point along the axis (cos >= 0 by construction)",
        "explained_variance": [float(x) for x in ratio],
        "auroc_roles_vs_default": auroc(d_test, r_test),
        "auroc_ci": list(auroc_ci(d_test, r_test, n_boot, seed)),
        "auroc_default_context": auroc(d_test, r_test_dc),
        "auroc_default_context_ci": list(auroc_ci(d_test, r_test_dc, n_boot, seed)),
        "n_default_test": len(d_test), "n_role_test": len(r_test),
        "default_test_mean": float(d_test.mean()), "role_test_mean": float(r_test.mean()),
        "norm": float(np.linalg.norm(axis)), "norm_typical": float(np.linalg.norm(axis)) / typical,
        "scale": SCALE,
    }

    if steer_check and ps.traits:
        default_test = sel("default", "default", "test")
        steer_out = steering_check(model, ps, directions, layer, typical, coefficients,
                                   make_scorer(scorer), items, sel, default_test, max_new_tokens,
                                   on_progress, n_boot, seed)
        for t_out in traits_out:
            t_out["steer"] = steer_out[t_out["name"]]
    result = {
        "model": hf.identity, "layer": layer, "n_layers": n_layers(lm),
        "n_extraction": len(ps.extraction_questions), "n_test": len(ps.test_questions),
        "n_roles": len(ps.roles), "default_system": ps.default_system, "personas": ps.source,
        "max_new_tokens": max_new_tokens, "typical_norm": typical, "directions": DIRECTIONS_FILE,
        "traits": traits_out, "axis": axis_out, "points": points,
        "samples": [{"kind": it.kind, "name": it.name, "question": (ps.extraction_questions if it.split == "ext"
                                                                    else ps.test_questions)[it.q],
                     "response": it.text} for it in items if it.q == 0 and it.split == "test"],
        "seconds": round(time.time() - t0, 1),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        info.save(out)
        (out / "persona.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        with (out / RESPONSES_FILE).open("w", encoding="utf-8") as f:
            for it in items:
                f.write(json.dumps({"kind": it.kind, "name": it.name, "split": it.split, "q": it.q,
                                    "conversation": it.conv, "response": it.text}) + "\n")
    return result


def random_unit(width: int, seed: int) -> np.ndarray:
    """A seeded random unit vector (Gaussian, normalised)."""
    v = np.random.default_rng(seed).standard_normal(width)
    return (v / np.linalg.norm(v)).astype(np.float32)


def steering_check(model, ps: PersonaSet, directions: dict[str, np.ndarray], layer: int, typical: float,
                   coefficients: Sequence[float], scorer: TraitScorer, items: list[_Item], sel,
                   default_test: list[int], max_new_tokens: int, on_progress: Progress | None,
                   n_boot: int, seed: int) -> dict[str, dict]:
    """Steer along each trait direction on the test questions (default assistant) and score the
    trait from the text alone; per coefficient a mean score with a CI, and the slope.

    A control steers along one seeded random unit direction at the same coefficients; each trait's
    scorer scores those texts too (``control``), so a slope that any push of that size would give
    (text drifting towards the scorer's positive centroid as it degrades) shows up there.
    """
    from alignlab.interp.steer import steer

    coefs = [float(c) for c in coefficients]
    convs = [items[i].conv for i in default_test]
    unsteered = [items[i].text for i in default_test]
    nonzero = [c for c in coefs if c != 0]
    total = len(nonzero) * (len(ps.traits) + 1)
    done = [0]

    def steered(direction) -> dict[float, list[str]]:
        got = {}
        for c in coefs:
            if c == 0:
                got[c] = unsteered
                continue
            with steer(model, direction, layer, c * typical):
                got[c] = generate_texts(model, convs, max_new_tokens)
            done[0] += 1
            if on_progress:
                on_progress("steering", done[0], total)
        return got

    def curve(per_coef: list[list[float]]) -> dict:
        stats = [mean_ci(s, n_boot, seed) for s in per_coef]
        return {"score": [m for m, _ in stats], "ci": [ci for _, ci in stats],
                "slope": slope([c for c, s in zip(coefs, per_coef) for _ in s], [x for s in per_coef for x in s]),
                "slope_ci": slope_ci(coefs, per_coef, n_boot, seed)}

    control_seed = seed + 1
    control = steered(random_unit(len(next(iter(directions.values()))), control_seed))
    out = {}
    for t in ps.traits:
        score = scorer.for_trait(t, [items[i].text for i in sel("trait+", t.name, "ext")],
                                 [items[i].text for i in sel("trait-", t.name, "ext")])
        # The scorer's own validity: does it tell held-out positive-prompt replies from negative ones?
        sp = score([items[i].text for i in sel("trait+", t.name, "test")])
        sn = score([items[i].text for i in sel("trait-", t.name, "test")])
        texts_at = steered(directions[t.name])
        out[t.name] = {
            "coefficients": coefs, **curve([score(texts_at[c]) for c in coefs]), "n": len(convs),
            "scorer": scorer.name, "coefficient_unit": f"typical per-token norm at layer {layer} ({typical:.3g})",
            "scorer_auroc": auroc(sp, sn), "scorer_auroc_ci": list(auroc_ci(sp, sn, n_boot, seed)),
            "control": {**curve([score(control[c]) for c in coefs]),
                        "direction": f"random unit vector (seed {control_seed}), same coefficients"},
            "examples": [{"question": ps.test_questions[items[default_test[q]].q],
                          "texts": {str(c): texts_at[c][q] for c in (coefs[0], coefs[-1])}}
                         for q in range(min(2, len(convs)))],
        }
    return out


__all__ = ["AxisInfo", "persona_map", "random_unit", "steering_check"]
