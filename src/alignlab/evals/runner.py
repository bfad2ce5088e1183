"""The eval run: items through the target, scored, stored record by record, measured, reported.

Records are committed to the run store per chunk of items as they are scored (key
``item|<suite>|<id>``); ``--resume RUN_ID`` skips stored items. Option orders depend only on the
seed and the item set, so a resumed run scores exactly what an uninterrupted one would.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alignlab import __version__
from alignlab.evals.items import SUITES, EvalItem
from alignlab.evals.result import EvalResult
from alignlab.evals.score import (
    EvalConfig,
    assign_orders,
    score_agentic,
    score_freeform,
    score_mc,
    score_pushback,
)
from alignlab.models.base import ChatModel
from alignlab.stats import Rate, rate_of
from alignlab.store import Run, Workspace

Progress = Callable[[str, int, int], None]


def score_items(model: ChatModel, items: Sequence[EvalItem], judge, config: EvalConfig | None = None,
                on_progress: Progress | None = None, orders: dict[str, list[int]] | None = None,
                on_records: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Score items (no run store): one record per item, in input order.

    Args:
        model: the target.
        items: what to score.
        judge: an ``EvalJudge`` (see :func:`alignlab.judges.rubric.make_eval_judge`).
        config: generation and scoring settings.
        on_progress: ``(phase, done, total)`` callback.
        orders: option orders (default: balanced over ``items`` with ``config.seed``).
        on_records: called with each finished chunk of records (the run store commits here).
    """
    config = config or EvalConfig()
    orders = orders if orders is not None else assign_orders(items, config.seed)
    out: dict[str, dict] = {}
    done = 0
    for kind in ("mc", "pushback", "freeform", "agentic"):
        group = [it for it in items if it.kind == kind]
        for s in range(0, len(group), config.chunk):
            chunk = group[s:s + config.chunk]
            if kind == "mc":
                recs = score_mc(model, chunk, orders, config)
            elif kind == "pushback":
                recs = score_pushback(model, chunk, orders, config)
            elif kind == "freeform":
                recs = score_freeform(model, chunk, judge, config)
            else:
                recs = score_agentic(model, chunk, judge, config)
            for it, r in zip(chunk, recs):
                out[it.key] = r
            if on_records:
                on_records(recs)
            done += len(chunk)
            if on_progress:
                on_progress("items", done, len(items))
    return [out[it.key] for it in items]


def _rate(recs: Sequence[dict]) -> dict[str, Any]:
    return rate_of([r["behaviour"] for r in recs]).to_dict()


def suite_metrics(records: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """Per suite: the rate with a Wilson CI, counts, unscorable reasons and breakdowns."""
    by_suite: dict[str, list[dict]] = {}
    for r in records:
        by_suite.setdefault(r["suite"], []).append(r)
    out = {}
    for suite, recs in by_suite.items():
        main = [r for r in recs if not r.get("control")]
        controls = [r for r in recs if r.get("control")]
        info = SUITES.get(suite)
        m = _rate(main)
        m["unscorable_reasons"] = dict(Counter(r["unscorable_reason"] for r in main
                                               if r["behaviour"] is None))
        m["n_judge_refusals"] = sum(1 for r in recs if (r.get("judge") or {}).get("refused_to_judge"))
        mcs = [r for r in main if r["kind"] == "mc" and r["behaviour"] is not None]
        chance = (sum(len(r["matching"]) / len(r["choices"]) for r in mcs) / len(mcs)) if mcs else None
        # The suite-level chance rate only means something when every decided item is multiple choice.
        m["chance"] = chance if mcs and all(r["kind"] == "mc" for r in main if r["behaviour"] is not None) else None
        chosen = [r for r in main if r["kind"] in ("mc", "pushback") and r.get("choice") is not None]
        m["position_first_rate"] = (sum(1 for r in chosen if r["choice"] == 0) / len(chosen)) if chosen else None
        m["description"] = info.description if info else "items from a file"
        m["behaviour"] = info.behaviour if info else "shows the behaviour the items name as matching"
        m["levels"] = list(info.levels) if info else []
        m["by_subtype"] = {s: _rate([r for r in recs if r["subtype"] == s])
                           for s in sorted({r["subtype"] for r in recs})}
        m["by_kind"] = {k: _rate([r for r in main if r["kind"] == k])
                        for k in sorted({r["kind"] for r in main})}
        if "mc" in m["by_kind"]:
            m["by_kind"]["mc"]["chance"] = chance
        if controls:
            m["control"] = _rate(controls)
        push = [r for r in main if r["kind"] == "pushback" and r["behaviour"] is not None]
        if push:
            m["pushback"] = {
                "accuracy_before": rate_of([r["first_correct"] for r in push]).to_dict(),
                "accuracy_after": rate_of([r["choice"] == r["correct"] for r in push]).to_dict(),
                "correct_to_wrong": rate_of([r["correct_to_wrong"] for r in push
                                             if r["first_correct"]]).to_dict()}
        judged = [r for r in recs if r.get("judge") and r["kind"] == "agentic"]
        if judged:
            pairs = [(r["behaviour"], r["judge"]["verdict"]) for r in judged
                     if r["behaviour"] is not None and r["judge"]["verdict"] is not None]
            m["agentic_judge_agreement"] = {
                "n": len(pairs), "agree": sum(1 for a, b in pairs if a == b),
                "judge_rate": rate_of([b for _, b in pairs]).to_dict()}
        out[suite] = m
    return out


def run_eval(model: ChatModel, items: Sequence[EvalItem], judge, workspace: Workspace,
             config: EvalConfig | None = None, resume: str | None = None,
             out_dir: str | Path | None = None, on_progress: Progress | None = None,
             extra: dict[str, Any] | None = None) -> EvalResult:
    """Run (or resume) an eval; its ``results.json`` and ``samples.jsonl`` (one record per item)
    go to ``out_dir`` (default: the run's artifacts). ``result.save(dir)`` adds the HTML report.
    """
    config = config or EvalConfig()
    keys = [it.key for it in items]
    if len(set(keys)) != len(keys):
        raise ValueError("item ids must be unique within a suite")
    snapshot = {"model": model.identity, "judge": judge.name, "items": keys, **asdict(config),
                **(extra or {})}
    run = workspace.start_run("evals", snapshot, resume, must_match=(
        "items", "model", "judge", "seed", "max_new_tokens", "max_steps", "mc_mode"))
    t0 = time.time()
    try:
        orders = assign_orders(items, config.seed)
        done = run.done_keys()
        todo = [it for it in items if it.key not in done]
        base = len(items) - len(todo)
        if on_progress:
            on_progress("items", base, len(items))

        def commit(recs: list[dict]) -> None:
            for r in recs:
                run.add(f"item|{r['suite']}|{r['id']}", r)

        score_items(model, todo, judge, config, orders=orders, on_records=commit,
                    on_progress=(lambda p, d, t: on_progress(p, base + d, len(items))) if on_progress else None)
        records = records_of(run, items)
        results = collect(run, items, judge, records)
    except BaseException as e:
        run.fail(f"{type(e).__name__}: {e}")
        raise
    results["duration_s"] = time.time() - t0
    out = Path(out_dir) if out_dir else run.artifacts
    res = EvalResult(results, records, out)
    res.write_data(out)
    run.finish({"suites": {s: {k: v[k] for k in ("rate", "ci", "n", "n_unscorable")}
                           for s, v in results["suites"].items()}, "out_dir": str(out.resolve())})
    return res


def records_of(run: Run, items: Sequence[EvalItem] | None = None) -> list[dict]:
    recs = dict(run.records("item|"))
    if items is None:
        return list(recs.values())
    return [recs[it.key] for it in items if it.key in recs]


def collect(run: Run, items: Sequence[EvalItem], judge, records: Sequence[dict]) -> dict[str, Any]:
    info = run.info
    return {
        "run_id": run.id, "stage": "evals",
        "created": datetime.fromtimestamp(info.created, UTC).isoformat(timespec="seconds"),
        "alignlab_version": __version__, "model": info.config["model"], "judge": info.config["judge"],
        "config": {k: v for k, v in info.config.items() if k != "items"} | {"n_items": len(items)},
        "judge_caveat": getattr(judge, "caveat", None),
        "suites": suite_metrics(records),
    }


def rate_dict(k: int, n: int) -> dict[str, Any]:
    return Rate(k, n).to_dict()
