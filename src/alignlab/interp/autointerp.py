"""Automated interpretability after delphi: label latents from their contexts, score the labels.

Per latent of each source (the SAE and its baselines):

1. **windows**: the token table is cut into ``ctx_len``-token windows that never cross a document
   (nor a context segment when positions are given; BOS rows are left out). A window's activation
   for a latent is its maximum over the window's tokens.
2. **examples**: windows where the latent fires (max > 0), ranked by activation. The explainer is
   shown the top ``n_top`` and ``n_quantile`` more drawn evenly across ``n_bins`` rank-quantile
   bins of the rest. Held-out windows for scoring are drawn across the same bins from windows the
   explainer never saw; negatives are random windows where the latent never fires.
3. **explain**: the explainer reads the shown windows, with activating tokens marked ``<<so>>``,
   and writes a short label.
4. **detection**: the scorer reads the label and one unmarked window and says whether the pattern
   occurs in it (positives: held-out activating windows; negatives: non-activating windows).
5. **fuzzing**: the scorer reads the label and a held-out activating window with some tokens marked
   (the truly activating ones, or as many random non-activating ones) and says whether the marks
   fit the label. Fuzzing windows are other held-out windows than detection's while there are enough.

With the embedded SmolLM2-135M as explainer and scorer, expect near-chance scores: on planted
features (digits, "the", file/path words) of stdlib docstrings its detection AUROC was near 0.5 on
16 items (0.2-0.8, the chance band at that n) with each of three prompt wordings. The method needs
a capable scorer (``openai:``) to separate the SAE from its baselines.

Each test gives a balanced accuracy per latent: the mean of the true-positive and true-negative
rates over decided items. The scorer sees only the label and the text: never activations, never the
answer. The scorer answers by comparing the log-likelihoods of ``Yes`` and ``No`` as its reply when
the backend can score (and then an AUROC over the margins is reported too, which a yes-biased small
scorer does not flatten), else by generating and parsing a yes/no; an unparseable reply is
unscorable, counted apart and never folded into either side.

The **shuffled** baseline scores every labelled SAE latent with the label of another SAE latent (a
random derangement), on the same held-out items minus any window the donor's explainer saw.

This module is the run (:func:`run_autointerp`): explain and score every latent of every source,
resumably, with the baselines. Records go to ``latents.jsonl`` as they are produced;
``results.json`` holds means with bootstrap CIs, the interpretable fraction with a Wilson CI, and
the counts. The shared types are in :mod:`alignlab.interp.autointerp_types`, steps 1-2 in
:mod:`alignlab.interp.autointerp_examples`, steps 3-5 in :mod:`alignlab.interp.autointerp_score`;
none of them imports this module.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from alignlab.interp.autointerp_examples import build_examples, check_inputs, make_windows
from alignlab.interp.autointerp_score import ask_scorer, explain, resolve_scoring, scoring_items, tally
from alignlab.interp.autointerp_types import DEAD, MAIN_SOURCE, AutoInterpConfig, LatentExamples, TokenTable
from alignlab.models.base import ChatModel, Message
from alignlab.stats import bootstrap_ci, bootstrap_diff, wilson


# ------------------------------------------------------------------------------------ run
def _derangement(keys: list, seed: int) -> dict:
    """A random cyclic permutation (Sattolo): no key maps to itself (needs two or more keys)."""
    perm = list(range(len(keys)))
    rng = random.Random(f"{seed}:shuffle")
    for i in range(len(perm) - 1, 0, -1):
        j = rng.randrange(i)
        perm[i], perm[j] = perm[j], perm[i]
    return {keys[i]: keys[perm[i]] for i in range(len(keys))} if len(keys) > 1 else {}


def _read_jsonl(path: Path) -> list[dict]:
    """Lines of a JSONL file; a torn last line (killed mid-write) is dropped from the file."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i != len(lines) - 1:
                raise ValueError(f"{path}: line {i + 1} is not JSON; delete the file to start over") from None
            path.write_text("".join(x + "\n" for x in lines[:-1]))
    return rows


def _append(path: Path, rows: list[dict]) -> None:
    with path.open("a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def _check_resume(out: Path, meta: dict) -> None:
    f = out / "autointerp_config.json"
    if f.exists():
        old = json.loads(f.read_text())
        for key in meta:
            if old.get(key) != meta[key]:
                raise ValueError(f"{f}: {key} differs from this run ({old.get(key)!r} on disk, "
                                 f"{meta[key]!r} now); use a new out_dir or the same settings to resume")
    f.write_text(json.dumps(meta, indent=1))


def _previous_mode(out: Path, default: str) -> str:
    f = out / "results.json"
    return json.loads(f.read_text()).get("scoring", default) if f.exists() else default


def _mean_ci(values: list[float], seed: int) -> dict:
    if not values:
        return {"mean": None, "ci": None, "n": 0}
    return {"mean": sum(values) / len(values), "ci": list(bootstrap_ci(values, seed=seed)), "n": len(values)}


def _summary(scores: Sequence[dict | None], cfg: AutoInterpConfig) -> dict:
    """The three headline figures over latents' {"detection": .., "fuzzing": ..} (None: unscored)."""
    got = [s for s in scores if s]
    det = [s["detection"]["bal_acc"] for s in got if s["detection"]["bal_acc"] is not None]
    fuz = [s["fuzzing"]["bal_acc"] for s in got if s["fuzzing"]["bal_acc"] is not None]
    both = [(s["detection"]["bal_acc"] + s["fuzzing"]["bal_acc"]) / 2 for s in got
            if s["detection"]["bal_acc"] is not None and s["fuzzing"]["bal_acc"] is not None]
    k = sum(1 for b in both if b >= cfg.interpretable_threshold)
    frac: dict[str, Any] = {"rate": None, "ci": None, "k": k, "n": len(both), "excluded": len(scores) - len(both)}
    if both:  # the clamp absorbs wilson's float error at k = 0 or n (a bound 1e-17 past the rate)
        lo, hi = wilson(k, len(both))
        frac.update(rate=k / len(both), ci=[min(lo, k / len(both)), max(hi, k / len(both))])
    aucs = {kind: [s[kind]["auc"] for s in got if s[kind].get("auc") is not None]
            for kind in ("detection", "fuzzing")}
    return {"detection_bal_acc": _mean_ci(det, cfg.seed), "fuzzing_bal_acc": _mean_ci(fuz, cfg.seed),
            "interpretable_frac": frac, "detection_auc": _mean_ci(aucs["detection"], cfg.seed),
            "fuzzing_auc": _mean_ci(aucs["fuzzing"], cfg.seed),
            "unscorable_items": sum(s[k]["unscorable"] for s in got for k in ("detection", "fuzzing"))}


def _counts(records: list[dict]) -> dict:
    return {"latents": len(records), "labelled": sum(1 for r in records if r["label"] is not None),
            "explainer_failures": sum(1 for r in records
                                      if r["label"] is None and r["explainer_error"] != DEAD),
            "no_activations": sum(1 for r in records if r["explainer_error"] == DEAD),
            "unscorable_items": sum(r[k]["unscorable"] for r in records for k in ("detection", "fuzzing"))}


def _paired(main: list[dict], base: list[dict | None], kind: str, seed: int) -> dict | None:
    pairs = [(m[kind]["bal_acc"], b[kind]["bal_acc"]) for m, b in zip(main, base)
             if b and m[kind]["bal_acc"] is not None and b[kind]["bal_acc"] is not None]
    if not pairs:
        return None
    diff, ci = bootstrap_diff([b for _, b in pairs], [a for a, _ in pairs], paired=True, seed=seed)
    return {"diff": diff, "ci": list(ci), "n": len(pairs)}


def run_autointerp(tokens: TokenTable, sources: Mapping[str, tuple[Any, Sequence[int]]],
                   explainer: ChatModel, scorer: ChatModel, cfg: AutoInterpConfig,
                   out_dir: str | Path, progress: Callable[[int, int], None] | None = None) -> dict:
    """Explain and score every latent of every source; write latents.jsonl and results.json.

    Labels go to ``labels.jsonl`` and latent records to ``latents.jsonl`` as they are produced; a
    rerun with the same settings skips what is there. ``progress(done, total)`` counts two steps
    per latent (explained, scored).

    Args:
        tokens: the budget's token table (corpus order).
        sources: name -> (acts [n_tokens, m], latent ids); must include ``"sae"``; the others
            (``random_sae``, ``neurons``) are baselines.
        explainer: writes labels. scorer: answers detection and fuzzing (never sees activations).
        cfg: settings. out_dir: output folder.

    Returns:
        The results dict written to ``results.json``.
    """
    if MAIN_SOURCE not in sources:
        raise ValueError(f"sources: no {MAIN_SOURCE!r} entry (got {sorted(sources)}); the SAE's latents "
                         f"are the main source, the others are baselines")
    check_inputs(tokens, sources)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in asdict(cfg).items() if k not in ("batch_size", "explain_batch")}
    meta.update(explainer=explainer.identity, scorer=scorer.identity)
    _check_resume(out, meta)
    windows = make_windows(tokens, cfg.ctx_len)
    examples = {name: build_examples(tokens, acts, ids, cfg, name, windows)
                for name, (acts, ids) in sources.items()}
    every = [ex for exs in examples.values() for ex in exs]
    total, done = 2 * len(every), 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if progress:
            progress(done, total)

    label_file, record_file = out / "labels.jsonl", out / "latents.jsonl"
    labels = {(r["source"], r["latent"]): (r["label"], r["explainer_error"]) for r in _read_jsonl(label_file)}
    todo = [ex for ex in every if (ex.source, ex.latent) not in labels]
    tick(len(every) - len(todo))
    for s in range(0, len(todo), cfg.explain_batch):
        to_explain = todo[s:s + cfg.explain_batch]
        rows: list[dict[str, Any]] = [
            {"source": ex.source, "latent": ex.latent, "label": lab, "explainer_error": err}
            for ex, (lab, err) in zip(to_explain, explain(to_explain, explainer, cfg))]
        _append(label_file, rows)
        labels.update({(r["source"], r["latent"]): (r["label"], r["explainer_error"]) for r in rows})
        tick(len(to_explain))

    main = {ex.latent: ex for ex in examples[MAIN_SOURCE]}
    donor = _derangement([ex.latent for ex in examples[MAIN_SOURCE]
                          if labels[(MAIN_SOURCE, ex.latent)][0] is not None], cfg.seed)
    records = {(r["source"], r["latent"]): r for r in _read_jsonl(record_file)}
    pending = [ex for ex in every if (ex.source, ex.latent) not in records]
    tick(len(every) - len(pending))
    mode = resolve_scoring(scorer, cfg.scoring) if pending else _previous_mode(out, cfg.scoring)
    while pending:
        chunk: list[tuple[LatentExamples, list[tuple[list[list[Message]], list[bool]]]]] = []
        size = 0
        while pending and (not chunk or size < cfg.batch_size):
            ex = pending.pop(0)
            label = labels[(ex.source, ex.latent)][0]
            parts = [scoring_items("detection", ex, label), scoring_items("fuzzing", ex, label)]
            if ex.source == MAIN_SOURCE and ex.latent in donor:
                d = main[donor[ex.latent]]
                skip = d.explainer_windows()
                dl = labels[(MAIN_SOURCE, d.latent)][0]
                parts += [scoring_items("detection", ex, dl, skip), scoring_items("fuzzing", ex, dl, skip)]
            chunk.append((ex, parts))
            size += sum(len(p[0]) for p in parts)
        answers = ask_scorer(scorer, [c for _, parts in chunk for p in parts for c in p[0]], mode, cfg)
        rows, at = [], 0
        for ex, parts in chunk:
            tallies = []
            for convs, truth in parts:
                tallies.append(tally(truth, answers[at:at + len(convs)]))
                at += len(convs)
            label, err = labels[(ex.source, ex.latent)]
            shuffled = None
            if len(tallies) == 4:
                shuffled = {"detection": tallies[2], "fuzzing": tallies[3],
                            "label_from": donor[ex.latent]}
            rows.append({
                "source": ex.source, "latent": ex.latent, "density": ex.density, "max_act": ex.max_act,
                "hist": ex.hist, "label": label, "explainer_error": err,
                "detection": tallies[0], "fuzzing": tallies[1], "shuffled": shuffled,
                "examples": {"top": [c.to_dict() for c in ex.top],
                             "quantiles": [c.to_dict() for c in ex.quantiles],
                             "negative": [c.to_dict() for c in ex.negatives],
                             "held_out": [c.to_dict() for c in ex.positives]}})
        _append(record_file, rows)
        records.update({(r["source"], r["latent"]): r for r in rows})
        tick(len(chunk))

    by_source = {name: [records[(name, ex.latent)] for ex in exs] for name, exs in examples.items()}
    results = _results(by_source, cfg)
    results.update(config=asdict(cfg), explainer=explainer.identity, scorer=scorer.identity,
                   scoring=mode, rule=cfg.rule())
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results


def _results(by_source: dict[str, list[dict]], cfg: AutoInterpConfig) -> dict:
    recs = by_source[MAIN_SOURCE]
    head = _summary(recs, cfg)
    head.pop("unscorable_items")
    res = {**head, "baselines": {}, "counts": _counts(recs)}
    shuffled = [r["shuffled"] for r in recs]
    if any(shuffled):
        sh = _summary(shuffled, cfg)
        sh["counts"] = {"latents": sum(1 for s in shuffled if s), "unscorable_items": sh.pop("unscorable_items")}
        sh["main_minus_shuffled"] = {k: _paired(recs, shuffled, k, cfg.seed) for k in ("detection", "fuzzing")}
        res["baselines"]["shuffled"] = sh
    for name, rs in by_source.items():
        if name != MAIN_SOURCE:
            base = _summary(rs, cfg)
            base.pop("unscorable_items")
            base["counts"] = _counts(rs)
            res["baselines"][name] = base
    return res
