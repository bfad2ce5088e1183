"""The plan of a generated evaluation: understand the behaviour, ideate scenarios, vary them.

The first three stages of :mod:`alignlab.evals.generate`: the helper restates what counts, what
does not and why it matters (``_understand``), writes scenario seeds one line each until enough
distinct ones are found (``_ideate``), and perturbs each seed in setting, stakes or who is asking
(``_vary``). ``plan_items`` runs them once and keeps the result in ``plan.json``, so a rerun with the
same settings resumes from it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alignlab.evals.generate_config import GenConfig, ProgressCb, derive_seed, now_iso, report_progress
from alignlab.evals.generate_parse import normalise, parse_scenarios, parse_understanding
from alignlab.evals.generate_prompts import VARIATION_DIMENSIONS, ideate_conv, understand_conv, vary_conv
from alignlab.models.base import ChatModel, GenerationConfig


def _understand(helper: ChatModel, description: str, seed: int, cfg: GenConfig) -> dict[str, Any]:
    gc = GenerationConfig(max_new_tokens=160, temperature=cfg.temperature, top_p=0.95,
                          seed=derive_seed(seed, "understand"))
    out = helper.generate([understand_conv(description)], gc)[0]
    parsed = parse_understanding(out.text) if out.ok else {}
    return {**parsed, "raw": out.text if out.ok else "", "error": out.error,
            "parsed": all(k in parsed for k in ("counts", "does_not_count", "why"))}


def _ideate(helper: ChatModel, description: str, n_base: int, seed: int, cfg: GenConfig,
            step: Callable[[int], None]) -> tuple[list[str], dict[str, Any]]:
    seeds: list[str] = []
    seen: set[str] = set()
    dropped: Counter[str] = Counter()
    rounds = 0
    while len(seeds) < n_base and rounds < cfg.ideate_rounds:
        k = min(cfg.ideate_per_call, n_base - len(seeds) + 2)
        conv = ideate_conv(description, k)
        gc = GenerationConfig(max_new_tokens=40 * k + 40, temperature=cfg.temperature, top_p=0.95,
                              seed=derive_seed(seed, "ideate", rounds))
        out = helper.generate([conv], gc)[0]
        rounds += 1
        step(1)
        if not out.ok:
            dropped["helper_error"] += 1
            continue
        lines, bad = parse_scenarios(out.text, prompt=conv[-1]["content"])
        dropped.update(bad)
        for s in lines:
            key = normalise(s)
            if key in seen:
                dropped["duplicate"] += 1
            elif len(seeds) < n_base:
                seen.add(key)
                seeds.append(s)
    return seeds, {"requested": n_base, "got": len(seeds), "rounds": rounds,
                   "dropped_lines": dict(dropped)}


def _vary(helper: ChatModel, seeds: list[str], variations: int, seed: int, cfg: GenConfig
          ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    dims = list(VARIATION_DIMENSIONS)
    jobs = [(b, dims[(b + j) % len(dims)]) for b in range(len(seeds)) for j in range(variations)]
    prompts = [vary_conv(seeds[b], d) for b, d in jobs]
    gc = GenerationConfig(max_new_tokens=90, temperature=cfg.temperature, top_p=0.95,
                          seed=derive_seed(seed, "vary"))
    outs = helper.generate(prompts, gc) if prompts else []
    seen = {normalise(s) for s in seeds}
    dropped: Counter[str] = Counter()
    by_base: dict[int, list[tuple[str, str]]] = {}
    for (b, d), conv, o in zip(jobs, prompts, outs):
        if not o.ok:
            dropped["helper_error"] += 1
            continue
        lines, bad = parse_scenarios(o.text, prompt=conv[-1]["content"])
        text = lines[0] if lines else ""
        reason = (next(iter(bad), "empty_output") if not text
                  else "duplicate" if normalise(text) in seen else None)
        if reason:
            dropped[reason] += 1
            continue
        seen.add(normalise(text))
        by_base.setdefault(b, []).append((text, d))
    scen: list[dict[str, Any]] = []
    for b, s in enumerate(seeds):
        scen.append({"text": s, "variation": "base", "base": b})
        scen += [{"text": t, "variation": d, "base": b} for t, d in by_base.get(b, [])]
    return scen, dict(dropped)


def plan_items(helper: ChatModel, description: str, out: Path, meta: dict[str, Any], cfg: GenConfig,
          on_progress: ProgressCb | None) -> dict[str, Any]:
    path = out / "plan.json"
    if path.exists():
        plan = json.loads(path.read_text(encoding="utf-8"))
        for k, v in meta.items():
            if plan.get(k) != v:
                raise ValueError(f"{path}: this folder holds a generation with {k}={plan.get(k)!r}, not "
                                 f"{v!r}; use a new out_dir, or rerun with the same settings to resume")
        return plan
    understanding = _understand(helper, description, meta["seed"], cfg)
    report_progress(on_progress, "understand", 1)(1)
    n, variations, seed = meta["n"], meta["variations"], meta["seed"]
    n_base = math.ceil(n / (1 + variations))
    seeds, ideation = _ideate(helper, description, n_base, seed, cfg,
                              report_progress(on_progress, "ideate", cfg.ideate_rounds))
    scen, vary_dropped = _vary(helper, seeds, variations, seed, cfg)
    scen = scen[:n]
    for i, s in enumerate(scen):
        s["index"] = i
    ideation.update({"variations_dropped": vary_dropped, "scenarios": len(scen),
                     "shortfall": n - len(scen)})
    plan = {**meta, "helper": helper.identity, "created": now_iso(), "understanding": understanding,
            "ideation": ideation, "scenarios": scen}
    if scen:  # a plan without scenarios (helper errors, junk) is not kept: a rerun ideates again
        path.write_text(json.dumps(plan, indent=1, ensure_ascii=False), encoding="utf-8")
    return plan
