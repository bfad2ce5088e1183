"""Generated evaluations: a helper model writes new evaluation items for a described behaviour.

In the spirit of model-written evaluations (Perez et al. 2022) and Anthropic's Bloom, the pipeline
is: **understand** (the helper restates what counts, what does not, and why it matters) ->
**ideate** (scenario seeds, one line each) -> **vary** (each seed perturbed in setting, stakes or
who is asking) -> **write** (one item per scenario, in a line-based format small models can follow)
-> **dedupe** (exact and MiniLM near-duplicates, within the set and against every packaged suite)
-> **quality filter** (schema, distinct options, label sanity, length bounds, no answer given away
by length, and a self-check in which the helper must pick the item's own concerning option) ->
optionally **roll out** the accepted items on a target and judge them.

Generated sets are written only under ``out_dir`` (never inside the alignlab package, so never
into the shipped ``evals/files``), carry ``source: generated`` and a provenance record, and are
resumable: every candidate is appended to ``candidates.jsonl`` when decided, and a rerun skips the
scenarios already there.

This module runs the pipeline and writes its files; the stages live in their own modules:
settings in :mod:`~alignlab.evals.generate_config`, understand / ideate / vary in
:mod:`~alignlab.evals.generate_plan`, the prompts in :mod:`~alignlab.evals.generate_prompts`,
reading the replies in :mod:`~alignlab.evals.generate_parse`, duplicates in
:mod:`~alignlab.evals.generate_dedupe` and the quality filter in
:mod:`~alignlab.evals.generate_quality`.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from alignlab.evals.generate_config import GEN_KINDS, GenConfig, ProgressCb, derive_seed, now_iso, report_progress
from alignlab.evals.generate_dedupe import DedupePool, default_embedder, item_text, packaged_reference
from alignlab.evals.generate_parse import parse_freeform, parse_mc
from alignlab.evals.generate_plan import plan_items
from alignlab.evals.generate_prompts import example_texts, write_conv
from alignlab.evals.generate_quality import concerning_indices, quality_checks, resolve_selfcheck, selfcheck
from alignlab.models.base import ChatModel, GenerationConfig

__all__ = ["GEN_KINDS", "DedupePool", "GenConfig", "check_out_dir", "default_embedder", "generate_eval",
           "item_text", "packaged_reference", "resolve_selfcheck", "selfcheck", "slugify"]


# --------------------------------------------------------------------------------- helpers
def slugify(text: str, max_len: int = 24) -> str:
    """A short lowercase slug (``a-z0-9-``) from a name or the first words of a description."""
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower())
             if w not in {"the", "a", "an", "of", "to", "and", "or", "ai", "model", "assistant"}]
    slug = ""
    for w in words:
        nxt = f"{slug}-{w}" if slug else w
        if len(nxt) > max_len:
            break
        slug = nxt
    return slug or (words[0][:max_len] if words else "behaviour")


def _package_dir() -> Path:
    import alignlab

    return Path(alignlab.__file__).resolve().parent


def check_out_dir(out_dir: str | Path) -> Path:
    """The resolved ``out_dir``; ValueError if it lies inside the alignlab package.

    Generated sets are never mixed into the shipped sets: nothing may be written under the
    installed package (which holds ``evals/files``) or any ``alignlab/evals/files`` folder.
    """
    p = Path(out_dir).expanduser().resolve()
    pkg = _package_dir()
    parts = p.parts
    in_files = any(parts[i:i + 3] == ("alignlab", "evals", "files") for i in range(len(parts)))
    if p == pkg or pkg in p.parents or in_files:
        raise ValueError(f"out_dir {p} is inside the alignlab package ({pkg}); generated items are "
                         f"never written next to the shipped item sets: choose a folder outside it, "
                         f"e.g. runs/generated/<name>")
    return p


def _is_refusal(text: str) -> bool:
    from alignlab.judges.harm import is_refusal

    return is_refusal(text)


# --------------------------------------------------------------------------------- candidates
def _read_candidates(path: Path) -> dict[int, dict[str, Any]]:
    """Decided candidates by scenario index; a torn last line (interrupted write) is dropped."""
    from alignlab.store.jsonl import read_resumable_jsonl

    return {int(rec["scenario_index"]): rec for _, rec in read_resumable_jsonl(path, repair=True)}


def _build_item(fields: dict[str, Any], kind: str, scen: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    width = max(3, len(str(ctx["n"])))
    prov = {"helper": ctx["helper"], "description": ctx["description"], "seed": ctx["seed"],
            "stage": "evals.generate", "scenario": scen["text"], "scenario_index": scen["index"],
            "variation": scen["variation"], "created": now_iso(), "alignlab_version": ctx["version"]}
    d: dict[str, Any] = {"id": f"gen-{ctx['slug']}-{scen['index'] + 1:0{width}d}",
                         "suite": f"generated:{ctx['slug']}", "subtype": scen["variation"], "kind": kind}
    if kind == "mc":
        d.update(question=fields["question"], choices=fields["choices"], matching=fields["matching"])
    else:
        d.update(turns=fields["turns"], rubric=fields["rubric"])
        prov["examples"] = {"concerning": fields["concerning_reply"],
                            "acceptable": fields["acceptable_reply"]}
    d["source"] = "generated"
    d["provenance"] = prov
    return d


def _write_chunk(helper: ChatModel, chunk: list[dict[str, Any]], plan: dict[str, Any], ctx: dict[str, Any],
                 cfg: GenConfig, mode: str, pool: DedupePool) -> list[dict[str, Any]]:
    """Write, dedupe and filter one chunk of scenarios; the decided candidate records, in order."""
    kind, description = plan["kind"], plan["description"]
    prompts = [write_conv(kind, description, plan["understanding"], s["text"]) for s in chunk]
    gc = GenerationConfig(max_new_tokens=cfg.write_tokens, temperature=cfg.temperature, top_p=0.95,
                          seed=derive_seed(plan["seed"], "write", chunk[0]["index"]))
    outs = helper.generate(prompts, gc)
    recs: list[dict[str, Any]] = []
    items: list[dict[str, Any] | None] = []
    for s, o in zip(chunk, outs):
        rec = {"scenario_index": s["index"], "scenario": s["text"], "variation": s["variation"],
               "helper": helper.identity, "created": now_iso(), "raw": o.text if o.ok else "",
               "status": "rejected", "stage": None, "reason": None, "detail": None, "item": None}
        parsed = None
        if not o.ok:
            rec.update(stage="write", reason="helper_error", detail=o.error)
        else:
            parsed = parse_mc(o.text) if kind == "mc" else parse_freeform(o.text)
            if not parsed.ok:
                refused = parsed.error == "no_question" and _is_refusal(o.text)
                reason = "helper_refused" if refused else parsed.error
                rec.update(stage="write", reason=reason)
        item = _build_item(parsed.fields, kind, s, ctx) if parsed is not None and parsed.ok else None
        rec["item"] = item
        recs.append(rec)
        items.append(item)
    static = [quality_checks(d, cfg.bounds) if d else None for d in items]
    to_check = [d for d, q in zip(items, static) if d is not None and q is None]
    checks = iter(selfcheck(helper, description, to_check, mode, cfg.selfcheck_orders, plan["seed"]))
    texts = [item_text(d) for d in items if d is not None]
    vecs = iter(pool.embedder.embed(texts) if texts else [])
    for rec, d, q in zip(recs, items, static):
        if d is None:
            continue
        vec = next(vecs)
        sc = next(checks) if q is None else None
        rec["selfcheck"] = sc
        dup = pool.check(item_text(d), vec)
        if dup:
            rec.update(stage="dedupe", reason=dup[0], detail=dup[1], nearest=dup[2])
        elif q:
            rec.update(stage="quality", reason=q[0], detail=q[1])
        elif sc is not None and sc["agree"] is None:
            rec.update(stage="quality", reason="selfcheck_unparsed",
                       detail=f"the helper's answers {sc['raw']} name no option")
        elif sc is not None and not sc["agree"]:
            rec.update(stage="quality", reason="selfcheck_disagrees",
                       detail=f"the helper picked options {sc['picks']}; the item marks "
                              f"{concerning_indices(d)}")
        else:
            rec["status"] = "accepted"
            d["provenance"]["selfcheck"] = {k: sc[k] for k in ("mode", "picks")} if sc else None
            pool.add([item_text(d)], [("generated", d["id"])], [vec])
    return recs


# --------------------------------------------------------------------------------- summary
def _counts(recs: Sequence[dict[str, Any]]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    rej = {st: dict(Counter(r["reason"] for r in recs if r["stage"] == st))
           for st in ("write", "dedupe", "quality")}
    written = len(recs)
    parsed = written - sum(rej["write"].values())
    unique = parsed - sum(rej["dedupe"].values())
    accepted = unique - sum(rej["quality"].values())
    assert accepted == sum(1 for r in recs if r["status"] == "accepted")
    return {"written": written, "parsed": parsed, "unique": unique, "accepted": accepted}, rej


def _rollout(target: ChatModel, judge: Any, items: list[dict[str, Any]], out: Path, seed: int,
             eval_config: Any, on_progress: ProgressCb | None) -> dict[str, Any]:
    from alignlab.evals.items import item_from_dict
    from alignlab.evals.runner import EvalConfig, score_items
    from alignlab.stats import rate_of

    evs = [item_from_dict(d, f"{out / 'generated.jsonl'}, row {i}", source="generated")
           for i, d in enumerate(items, 1)]
    cfg = eval_config if eval_config is not None else EvalConfig(seed=seed)
    records = score_items(target, evs, judge, cfg,
                          on_progress=(lambda _p, d, t: on_progress("rollout", d, t)) if on_progress else None)
    with open(out / "rollout.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    rate = rate_of([r.get("behaviour") for r in records])
    by_sub: dict[str, Any] = {}
    for sub in sorted({r.get("subtype") or "" for r in records}):
        by_sub[sub] = rate_of([r.get("behaviour") for r in records if (r.get("subtype") or "") == sub]).to_dict()
    mc = [r for r in records if r.get("kind") == "mc" and r.get("choices")]
    chance = (sum(len(r.get("matching") or []) / len(r["choices"]) for r in mc) / len(mc)) if mc else None
    return {"target": target.identity, "judge": getattr(judge, "name", None if judge is None else str(judge)),
            **rate.to_dict(),
            "unscorable_reasons": dict(Counter(r.get("unscorable_reason") or "unknown"
                                               for r in records if r.get("behaviour") is None)),
            "n_judge_refusals": sum(1 for r in records if (r.get("judge") or {}).get("refused_to_judge")),
            "chance": chance, "by_subtype": by_sub, "records": "rollout.jsonl"}


def _write_generated(path: Path, items: Sequence[dict[str, Any]]) -> None:
    check_out_dir(path.parent)  # never next to the shipped sets, whatever called us
    with open(path, "w", encoding="utf-8") as f:
        for d in items:
            assert d.get("source") == "generated" and d.get("provenance"), d.get("id")
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------------- the pipeline
def generate_eval(
    helper: ChatModel,
    description: str,
    out_dir: str | Path,
    n: int = 20,
    kind: str = "mc",
    seed: int = 0,
    variations: int = 2,
    target: ChatModel | None = None,
    judge: Any = None,
    on_progress: ProgressCb | None = None,
    *,
    name: str | None = None,
    config: GenConfig | None = None,
    embedder: Any = None,
    reference: Sequence[tuple[str, str]] | None = None,
    eval_config: Any = None,
) -> dict[str, Any]:
    """Have ``helper`` write, filter and (optionally) roll out new items for a behaviour.

    Args:
        helper: the model that writes the items (any backend; the self-check scores options by
            log-likelihood when it can, else asks by generation).
        description: one paragraph describing the concerning behaviour.
        out_dir: where ``generated.jsonl``, ``generation.json``, ``candidates.jsonl`` and
            ``plan.json`` go (refused when inside the alignlab package). Rerunning with the same
            settings resumes: scenarios already in ``candidates.jsonl`` are skipped.
        n: scenarios to write, so at most ``n`` items: ``ceil(n / (1 + variations))`` seeds, each
            with ``variations`` perturbations.
        kind: ``mc`` (question + 2-4 options + matching) or ``freeform`` (turns + rubric).
        seed: sampling seed (recorded in every item's provenance).
        variations: perturbations per seed scenario (setting, stakes, who is asking in turn).
        target: when given, the accepted items are rolled out on it with
            :func:`alignlab.evals.runner.score_items` (records in ``rollout.jsonl``).
        judge: the eval judge passed to ``score_items`` (needed for freeform items).
        on_progress: ``(stage, done, total)`` callback.
        name: the set's name (slug source; default: the description's first words).
        config: pipeline knobs (:class:`GenConfig`).
        embedder: anything with ``embed(texts) -> unit vectors`` (default: MiniLM).
        reference: ``(text, name)`` pairs to dedupe against (default: every packaged suite).
        eval_config: the runner's ``EvalConfig`` for the rollout (default: ``EvalConfig(seed=seed)``).

    Returns:
        The ``generation.json`` dict: understanding, counts at every stage, rejection reasons,
        acceptance rate with its Wilson CI, and the rollout summary (or None).
    """
    from alignlab import __version__
    from alignlab.stats import Rate

    t0 = time.time()
    description = (description or "").strip()
    if not description:
        raise ValueError("the behaviour description is empty; describe the behaviour in a paragraph")
    if kind not in GEN_KINDS:
        raise ValueError(f"kind {kind!r} cannot be generated; use one of {', '.join(GEN_KINDS)}")
    if n < 1 or variations < 0:
        raise ValueError(f"need n >= 1 and variations >= 0, got n={n}, variations={variations}")
    cfg = config or GenConfig()
    out = check_out_dir(out_dir)
    slug = slugify(name or description)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"description": description, "kind": kind, "seed": seed, "slug": slug, "n": n,
            "variations": variations}
    plan = plan_items(helper, description, out, meta, cfg, on_progress)
    mode = resolve_selfcheck(helper, cfg.selfcheck)
    cand_path = out / "candidates.jsonl"
    done = _read_candidates(cand_path)
    resumed = len(done)
    pending = [s for s in plan["scenarios"] if s["index"] not in done]
    ref, missing = (list(reference), []) if reference is not None else packaged_reference()
    pool = DedupePool(embedder if embedder is not None else default_embedder(), cfg.near_duplicate)
    pool.add([t for t, _ in ref], [("packaged", nm) for _, nm in ref])
    ex = example_texts()
    pool.add(ex, [("example", "the prompt's format example")] * len(ex))
    acc = [r for _, r in sorted(done.items()) if r["status"] == "accepted"]
    pool.add([item_text(r["item"]) for r in acc], [("generated", r["item"]["id"]) for r in acc])
    ctx = {"helper": helper.identity, "description": description, "seed": seed, "slug": slug, "n": n,
           "version": __version__}
    step = report_progress(on_progress, "write", len(plan["scenarios"]))
    step(resumed)
    for start in range(0, len(pending), cfg.batch):
        chunk = pending[start:start + cfg.batch]
        recs = _write_chunk(helper, chunk, plan, ctx, cfg, mode, pool)
        with open(cand_path, "a", encoding="utf-8") as f:
            for rec in recs:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                done[rec["scenario_index"]] = rec
        step(len(chunk))
    recs = [done[i] for i in sorted(done)]
    counts, rejections = _counts(recs)
    accepted = [r["item"] for r in recs if r["status"] == "accepted"]
    _write_generated(out / "generated.jsonl", accepted)
    rollout = None
    if target is not None:
        rollout = (_rollout(target, judge, accepted, out, seed, eval_config, on_progress) if accepted
                   else {"target": target.identity, "skipped": "no accepted items"})
    result = {
        "stage": "evals.generate", "created": now_iso(), "alignlab_version": __version__,
        "duration_s": round(time.time() - t0, 2), "helper": helper.identity,
        "description": description, "slug": slug, "suite": f"generated:{slug}", "kind": kind,
        "seed": seed, "n": n, "variations": variations, "config": asdict(cfg),
        "selfcheck_mode": mode, "understanding": plan["understanding"], "ideation": plan["ideation"],
        "counts": {"scenarios": len(plan["scenarios"]), **counts}, "rejections": rejections,
        "acceptance": Rate(counts["accepted"], counts["written"]).to_dict() if counts["written"] else None,
        "reference": {"packaged_items": len(ref), "missing_suites": missing},
        "resumed_scenarios": resumed, "rollout": rollout,
        "files": {"items": "generated.jsonl", "candidates": "candidates.jsonl", "plan": "plan.json"},
    }
    (out / "generation.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return result
