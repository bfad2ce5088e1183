"""``alignlab guard train|calibrate|eval``: constitutional classifiers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from alignlab.cli.common import (
    GUARD_DATA,
    GUARD_EVAL,
    GUARD_TRAIN,
    Defaults,
    batch_size_option,
    ci,
    console,
    judge_option,
    no_cache_option,
    out,
    pct,
    progress,
    quiet_hf,
    save,
    target_option,
    user_errors,
    workspace_option,
)

app = typer.Typer(help="Constitutional classifiers: train a guard, evaluate it.", no_args_is_help=True)

CALIBRATE = Defaults("alignlab.guard.calibrate:calibrate_guard")
EMBED_CHUNK_TOKENS = 32
"""guard train's streaming check interval for the embed backbone (TrainConfig's is for probes)."""


@app.command("train")
def guard_train(
    out_dir: Path = typer.Option(..., "--out", help="Guard directory to write."),
    constitution: Path | None = typer.Option(None, help="Constitution YAML/Markdown (default: packaged)."),
    from_run: list[str] = typer.Option([], "--from-run", help="Red-team run id whose hits to add (repeatable)."),
    backbone: str = typer.Option(GUARD_TRAIN.backbone, help="embed, probe or cascade."),
    target: str = target_option("Model to guard: answers the training requests; probes read its activations."),
    helper: str = typer.Option("target", help="Model that writes requests and paraphrases "
                                              "('target', a spec, or 'none')."),
    generate: int = typer.Option(GUARD_DATA.generate_per_side, help="Helper-written requests per category and side."),
    paraphrase: bool = typer.Option(GUARD_DATA.paraphrases, help="One helper paraphrase per seed request."),
    augment: str = typer.Option("default", help="Attack templates used as augmentation ('default', a "
                                                "comma list, or 'none'); the others stay held out."),
    augment_per_query: int = typer.Option(GUARD_DATA.augment_per_query, help="Wrapped versions per request."),
    response_tokens: int = typer.Option(GUARD_DATA.response_tokens,
                                        help="Response length for output-classifier data (0: none)."),
    respond_wrapped: int = typer.Option(GUARD_DATA.respond_wrapped,
                                        help="Wrapped versions per request the target answers too, so output "
                                             "classifiers see replies under jailbreak templates."),
    fpr: float = typer.Option(GUARD_TRAIN.fpr, help="Target false-positive rate on benign data, per classifier."),
    chunk_tokens: int | None = typer.Option(None, help=f"Streaming check interval (default "
                                                          f"{EMBED_CHUNK_TOKENS} embed, "
                                                          f"{GUARD_TRAIN.chunk_tokens} probe)."),
    layers: str | None = typer.Option(None, help="Comma list of hidden-state layers for probes."),
    cascade_recall: float = typer.Option(GUARD_TRAIN.cascade_recall,
                                         help="Cascade: probe scores below the level keeping this recall pass "
                                              "unescalated (lower: less overhead)."),
    borderline_negatives: bool = typer.Option(False, help="Train on the calibration half of the packaged "
                                                          "borderline set as permitted examples (hard "
                                                          "negatives); guard eval uses the other half."),
    pool_behaviors: bool = typer.Option(False, help="Also train on every behavior of the packaged pool "
                                                    "half (restricted) and its benign counterpart "
                                                    "(permitted); never the held-out half."),
    workspace: Path = workspace_option("Run store (for --from-run)."),
    seed: int = typer.Option(GUARD_DATA.seed),
    batch_size: int = batch_size_option(),
) -> None:
    """Constitution -> synthetic data (+ red-team hits) -> classifiers -> a guard directory."""
    quiet_hf()
    from rich.table import Table

    from alignlab.guard import DataConfig, TrainConfig, build_and_train, examples_from_run, load_constitution
    from alignlab.guard.data import DEFAULT_AUGMENT
    from alignlab.models import load_model
    from alignlab.store import Workspace

    with user_errors(RuntimeError, FileNotFoundError, ValueError):
        if backbone not in ("embed", "probe", "cascade"):
            raise ValueError(f"--backbone must be embed, probe or cascade, not {backbone!r}")
        con = load_constitution(constitution)
        aug = DEFAULT_AUGMENT if augment == "default" else () if augment == "none" else \
            tuple(a.strip() for a in augment.split(",") if a.strip())
        from alignlab.redteam.attacks import get_attack

        for a in aug:
            get_attack(a)
        run_examples = []
        if from_run:
            from alignlab.data.behaviors import load_packaged
            from alignlab.data.splits import behavior_split

            held = {b.id for b in behavior_split(load_packaged())[1]}
            ws = Workspace(workspace)
            for rid in from_run:
                run = ws.read_run(rid)
                ids = set(run.info.config.get("behaviors", []))
                run_examples += examples_from_run(run.records(), rid, ids - held)
        tgt = load_model(target, batch_size=batch_size)
        hlp = None if helper == "none" else tgt if helper == "target" else load_model(helper, batch_size=batch_size)
    chunk = chunk_tokens or (EMBED_CHUNK_TOKENS if backbone == "embed" else GUARD_TRAIN.chunk_tokens)
    dcfg = DataConfig(generate_per_side=generate, paraphrases=paraphrase, augment_attacks=aug,
                      augment_per_query=augment_per_query, response_tokens=response_tokens,
                      respond_wrapped=respond_wrapped, seed=seed)
    tcfg = TrainConfig(backbone=backbone, fpr=fpr, chunk_tokens=chunk, seed=seed, cascade_recall=cascade_recall,
                       layers=tuple(int(x) for x in layers.split(",")) if layers else ())
    console.print(f"guard train: {con.name} ({len(con.categories)} categories), backbone {backbone}, "
                  f"target {target}, {len(run_examples)} examples from red-team runs")
    with progress("building data") as on_progress, user_errors(ValueError):
        from alignlab.data.splits import load_borderline

        negs = [(c, p) for _, c, p in load_borderline("calibration")] if borderline_negatives else []
        g = build_and_train(con, out_dir, dcfg, tcfg, helper=hlp, responder=tgt if response_tokens else None,
                            target=tgt, run_examples=run_examples, from_runs=from_run, progress=on_progress,
                            hard_negatives=negs, pool_behaviors=pool_behaviors)
    d = g.config["data"]
    out.print(f"\nguard {g.id}: {d['n']} examples ({d['with_response']} with responses), "
              f"trained in {g.config['train_seconds']:.0f}s")
    t = Table("classifier (test split)", "n", "precision", "recall", "F1", "AUPRC", "TPR@1%FPR", "FPR", "threshold")
    f2 = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
    for k, m in g.config["metrics"].items():
        t.add_row(k, str(m["n"]), f2(m.get("precision")), f2(m.get("recall")), f2(m.get("f1")),
                  f2(m.get("auprc")), f2(m.get("tpr_at_1pct_fpr")), f2(m.get("fpr")), f"{m['threshold']:.3f}")
    out.print(t)
    out.print(f"\n-> {out_dir}/config.json, weights.safetensors, data.jsonl")


@app.command("calibrate")
def guard_calibrate(
    guard: Path = typer.Option(..., help="Guard directory from 'alignlab guard train' (updated in place)."),
    target: str = target_option("The guarded model: its replies are scored by the output classifier "
                                "(and its activations by probes)."),
    benign: Path | None = typer.Option(None, help="Benign prompts never evaluated, .txt/.csv/.jsonl "
                                                     "(default: the calibration half of the packaged "
                                                     "borderline set)."),
    fpr: float = typer.Option(CALIBRATE.fpr, help="Most of the benign prompts each classifier may block."),
    max_new_tokens: int = typer.Option(GUARD_EVAL.max_new_tokens,
                                       help="Reply length scored by the streaming output check (match guard "
                                            f"eval's --max-new-tokens, default {GUARD_EVAL.max_new_tokens})."),
    batch_size: int = batch_size_option(),
) -> None:
    """Raise a trained guard's thresholds to block at most --fpr of benign prompts; no retraining.

    Scores are kept in the guard directory, so calibrating again at another --fpr generates nothing.
    """
    quiet_hf()
    from rich.table import Table

    from alignlab.data.behaviors import load_prompt_file
    from alignlab.data.splits import load_borderline
    from alignlab.guard import calibrate_guard, load_guard
    from alignlab.models import load_model

    with user_errors(RuntimeError, FileNotFoundError, ValueError):
        if not 0 <= fpr < 1:
            raise ValueError(f"--fpr must be in [0, 1), got {fpr}")
        g = load_guard(guard)
        prompts = [b.behavior for b in load_prompt_file(benign)] if benign else \
            [p for _, _, p in load_borderline("calibration")]
        tgt = load_model(target, batch_size=batch_size)
        console.print(f"guard calibrate: {g.id} ({g.backbone}) on {len(prompts)} benign prompts, "
                      f"replies from {target}, fpr {fpr:g} per classifier")
        with progress("calibration replies") as on_progress:
            rec = calibrate_guard(g, tgt, prompts, fpr=fpr, max_new_tokens=max_new_tokens, progress=on_progress,
                                  source=str(benign) if benign else "packaged borderline, calibration half")
    t = Table("classifier", "trained threshold", "calibrated", "blocks (trained)", "blocks (calibrated)")
    n = rec["n"]
    for k, h in rec["heads"].items():
        t.add_row(k, f"{h['trained']:.3f}", f"{h['calibrated']:.3f}",
                  f"{round(h['benign_block_rate_trained'] * n)}/{n}", f"{round(h['benign_block_rate'] * n)}/{n}")
    out.print(t)
    bound = "" if rec["exact"] else " (estimated: embedding heads are scored on word-cut prefixes)"
    out.print(f"guard refuses {rec['blocked_before']}/{n} -> {rec['blocked_after']}/{n} of these prompts{bound}")
    out.print(f"-> {guard}/config.json (thresholds), {guard}/calibration_scores.json")


@app.command("eval")
def guard_eval(
    guard: Path = typer.Option(..., help="Guard directory from 'alignlab guard train'."),
    target: str = target_option(),
    behaviors: Path | None = typer.Option(None, help="Evaluation behaviors (default: the packaged "
                                                        "held-out half)."),
    benign: Path | None = typer.Option(None, help="Extra benign prompts, .txt or .jsonl "
                                                     "(default: the evaluation half of the packaged "
                                                     "borderline set)."),
    attacks: str = typer.Option("templates", help="Comma list, or all / templates / llm."),
    attacker: str | None = typer.Option(None, help="Attacker spec for pair/tap/crescendo (adaptive: "
                                                      "they see the guard's refusals)."),
    judge: str = judge_option(),
    stages: str = typer.Option(",".join(GUARD_EVAL.stages), help="Guard stages: input, output, exchange."),
    chunk_tokens: int | None = typer.Option(GUARD_EVAL.chunk_tokens,
                                               help="Streaming check interval (default: the guard's)."),
    limit: int | None = typer.Option(None, help="Behaviors to use, stratified by category."),
    budget: int = typer.Option(GUARD_EVAL.budget), seed: int = typer.Option(GUARD_EVAL.seed),
    max_new_tokens: int = typer.Option(GUARD_EVAL.max_new_tokens, help="Target reply length."),
    latency_samples: int = typer.Option(GUARD_EVAL.latency_samples,
                                        help="Requests timed one at a time for p50/p95 latency."),
    batch_size: int = batch_size_option(),
    workspace: Path = workspace_option(),
    out_dir: Path = typer.Option(..., "--out", help="Where results.json and report.html go."),
    no_cache: bool = no_cache_option("Bypass the completion cache (unguarded run)."),
) -> None:
    """Red-team the target with and without the guard: ASR, over-refusal, overhead, with CIs."""
    quiet_hf()
    from alignlab.data import filter_behaviors, load_behaviors
    from alignlab.data.behaviors import load_packaged, load_prompt_file
    from alignlab.data.splits import behavior_split, load_borderline
    from alignlab.guard import GuardEvalConfig, load_guard, run_guard_eval
    from alignlab.judges.harm import make_judge
    from alignlab.models import load_model
    from alignlab.redteam.attacks import get_attacks
    from alignlab.store import Workspace

    with user_errors(RuntimeError, FileNotFoundError, ValueError):
        g = load_guard(guard)
        bs = load_behaviors(behaviors) if behaviors else behavior_split(load_packaged())[1]
        bs = filter_behaviors(bs, None, limit, seed)
        bl = [(b.id, b.category, b.behavior) for b in load_prompt_file(benign)] if benign \
            else load_borderline("evaluation")
        atk = get_attacks(attacks)
        ws = Workspace(workspace)
        cache = None if no_cache else ws.root / "completions.sqlite"
        tgt = load_model(target, batch_size=batch_size)
        cached = None
        if cache:
            from alignlab.models.cache import CachedModel, CompletionCache

            cached = CachedModel(tgt, CompletionCache(cache))
        att = load_model(attacker, cache=cache, batch_size=batch_size) if attacker else None
        jdg = make_judge(judge, cache=cache, batch_size=batch_size)
    cfg = GuardEvalConfig(budget=budget, seed=seed, max_new_tokens=max_new_tokens,
                          stages=tuple(s.strip() for s in stages.split(",") if s.strip()),
                          chunk_tokens=chunk_tokens, latency_samples=latency_samples,
                          extra={"target_spec": target, "judge_spec": judge, "attacker_spec": attacker,
                                 "behaviors_file": str(behaviors) if behaviors else "packaged held-out half",
                                 "benign_file": str(benign) if benign else "packaged borderline, evaluation half"})
    console.print(f"guard eval: {g.id} ({g.backbone}) on {target}: {len(bs)} behaviors x {len(atk)} attacks, "
                  f"{len(bl)} borderline prompts")
    with progress("unguarded") as on_progress, user_errors(ValueError):
        res = run_guard_eval(tgt, g, jdg, bs, atk, ws, cfg, borderline=bl, attacker=att,
                             cached_target=cached, out_dir=out_dir, on_progress=on_progress)
    save(res)
    print_guard_summary(res)
    out.print(f"\n-> {out_dir}/results.json, report.html")


def print_guard_summary(r: Mapping[str, Any]) -> None:
    """Print a guard evaluation: each rate unguarded -> guarded, the overhead and the latency."""
    def line(name: str, key: str) -> None:
        out.print(f"{name:<34} {pct(r[key + '_unguarded'])} {ci(r[key + '_unguarded_ci'])}  ->  "
                  f"{pct(r[key + '_guarded'])} {ci(r[key + '_guarded_ci'])}")

    out.print("")
    line("ASR (harmful, behavior-level)", "asr")
    line("attempted compliance", "compliance")
    line("over-refusal (benign + borderline)", "over_refusal")
    gb = r["over_refusal"].get("blocked_by_guard") or {}
    if gb.get("n"):
        out.print(f"{'  of which the guard blocked':<34} {gb['k']}/{gb['n']} {ci(gb['ci'])}")
    ov, lat = r["overhead"], r["latency"]
    out.print(f"{'overhead per generated token':<34} {pct(ov['wall_per_token'])} wall, "
              f"{pct(ov['added_flops_ratio'])} added FLOPs")
    if lat.get("n"):
        out.print(f"{'added latency (one request)':<34} p50 {lat['p50_added_s']:.3f}s, p95 {lat['p95_added_s']:.3f}s")
    h = r["asr_heldout_attacks"]
    if h["guarded"]["n"]:
        hc = (h["unguarded"].get("compliance") or {}, h["guarded"].get("compliance") or {})
        out.print(f"{'attacks held out of training':<34} ASR {pct(h['unguarded']['rate'])} -> "
                  f"{pct(h['guarded']['rate'])}, compliance {pct(hc[0].get('rate'))} -> "
                  f"{pct(hc[1].get('rate'))} ({', '.join(h['guarded']['attacks'])})")
    a_u, a_g = r.get("attempt_compliance_unguarded"), r.get("attempt_compliance_guarded")
    if a_u and a_g:
        out.print(f"{'attempt-level compliance':<34} {pct(a_u['rate'])} {ci(a_u['ci'])} ({a_u['k']}/{a_u['n']})"
                  f"  ->  {pct(a_g['rate'])} {ci(a_g['ci'])} ({a_g['k']}/{a_g['n']})")
    if r.get("judge_caveat"):
        console.print(f"[yellow]judge caveat:[/] {r['judge_caveat']}", highlight=False)
