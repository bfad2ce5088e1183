"""``alignlab lab``: the whole loop on one target, resumable stage by stage.

red-team (pool behaviors) -> judge agreement -> guard from the constitution and the red-team's hits ->
re-attack on held-out behaviors, adaptive attacks included -> behavioural evals -> activations, SAE and
auto-interp -> scorecard, ladder, strategy models -> one report.

The lab is a run in the workspace (stage ``lab``). Each finished stage is a record ``stage|NAME`` with
its summary and where its files are; a rerun with ``--resume`` (or the same ``--out``) skips them. A
stage killed midway resumes inside where its own machinery allows: the red-team and eval runs
continue from their committed records, the activation capture from its last shard, SAE training from
its checkpoint, auto-interp from its last latent; the guard trains again.

Every stage only calls the public functions of its package; stages meet in the run store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import alignlab.report  # noqa: F401  (registers the report writers that result.save uses)
from alignlab.errors import AlignlabError
from alignlab.lab.config import STAGES, LabConfig
from alignlab.lab.results import build_lab_results, compute_strategy
from alignlab.stats import format_pct as _pct

Progress = Callable[[str, int, int], None]
Log = Callable[[str], None]


class LabError(AlignlabError, RuntimeError):
    """A lab run that cannot go on; the message is one line that says what to do."""


@dataclass
class LabContext:
    """What the stages share: the workspace, the out folder, loaded models and earlier stages' results."""

    config: LabConfig
    workspace: Any
    out: Path
    run: Any
    log: Log
    progress: Callable[[str], Any]
    """``progress(first_phase)`` -> a context manager yielding a ``(phase, done, total)`` callback."""
    models: dict[str, Any] = field(default_factory=dict)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def cache(self) -> Path:
        return self.workspace.root / "completions.sqlite"

    def target(self, cached: bool = False):
        key = "target-cached" if cached else "target"
        if key not in self.models:
            from alignlab.models import load_model

            if cached:
                from alignlab.models.cache import CachedModel, CompletionCache

                self.models[key] = CachedModel(self.target(), CompletionCache(self.cache))
            else:
                self.models[key] = load_model(self.config.target, batch_size=self.config.batch_size)
        return self.models[key]

    def role(self, spec: str):
        """'target', 'helper' or a model spec -> a loaded model (the target instance is reused)."""
        if spec == "helper":
            spec = self.config.helper
        if spec in ("target", self.config.target):
            return self.target()
        if spec not in self.models:
            from alignlab.models import load_model

            self.models[spec] = load_model(spec, batch_size=self.config.batch_size)
        return self.models[spec]

    def dir(self, name: str) -> Path:
        d = self.out / name
        d.mkdir(parents=True, exist_ok=True)
        return d


# ----------------------------------------------------------------------------------- stages
def _judge(ctx: LabContext):
    from alignlab.judges.harm import HeuristicJudge, LLMJudge

    if ctx.config.judge in ("heuristic", "", None):
        return HeuristicJudge()
    return LLMJudge(ctx.role(ctx.config.judge))


def _unfinished(ws, stage: str, since: float, match: dict[str, Any]) -> str | None:
    """The id of this lab's interrupted run of ``stage`` with the same settings, to resume it."""
    for r in reversed(ws.runs(stage)):
        if r.created >= since and r.status in ("running", "failed") and \
                all(r.config.get(k) == v for k, v in match.items()):
            return r.id
    return None


def stage_redteam(ctx: LabContext) -> dict[str, Any]:
    from alignlab.data import filter_behaviors, load_packaged
    from alignlab.data.splits import behavior_split
    from alignlab.redteam.attacks import get_attacks
    from alignlab.redteam.engine import RedteamConfig, run_redteam

    c = ctx.config
    pool = filter_behaviors(behavior_split(load_packaged())[0], None, c.redteam.limit, c.seed)
    attacks = get_attacks(",".join(c.redteam.attacks))
    needs_attacker = any(a.kind == "llm" for a in attacks)
    target = ctx.target(cached=True)
    cfg = RedteamConfig(budget=c.redteam.budget, seed=c.seed, max_new_tokens=c.redteam.max_new_tokens,
                        extra={"target_spec": c.target, "judge_spec": c.judge, "behaviors_file": "packaged pool half",
                               "lab": ctx.run.id})
    resume = _unfinished(ctx.workspace, "redteam", ctx.run.info.created,
                         {"lab": ctx.run.id, "attacks": [a.name for a in attacks]})
    ctx.log(f"red-team: {len(pool)} pool behaviors x {len(attacks)} attacks on {c.target}"
            + (f" (resuming {resume})" if resume else ""))
    with ctx.progress("red-team") as p:
        res = run_redteam(target, _judge(ctx), pool, attacks, ctx.workspace, cfg,
                          attacker=ctx.role("helper") if needs_attacker else None, resume=resume,
                          out_dir=ctx.dir("redteam"), on_progress=p)
    res.save()
    return {"run_id": res["run_id"], "out": str(ctx.out / "redteam"), "asr": res["asr"],
            "compliance_rate": res["compliance_rate"], "n_behaviors": res["n_behaviors"],
            "summary": f"ASR {_pct(res['asr'])}, attempted compliance {_pct(res['compliance_rate'])} "
                       f"of {res['n_behaviors']} behaviors"}


def stage_judges(ctx: LabContext) -> dict[str, Any]:
    from alignlab.judges.validate import load_labels, validate_judge

    judge = _judge(ctx)
    rows = load_labels(None, ctx.config.judges.split)
    ctx.log(f"judge agreement: {judge.name} on {len(rows)} hand-labelled responses ({ctx.config.judges.split} split)")
    rep = validate_judge(judge, rows)
    rep.pop("disagreements", None)
    rep["split"] = ctx.config.judges.split
    out = ctx.dir("judges")
    (out / "results.json").write_text(json.dumps(rep, indent=2))
    ctx.workspace.log_result("judge-validate", {"judge": judge.name, "split": rep["split"], "lab": ctx.run.id},
                             {"kappa_harmful": rep["harmful"]["kappa"]}, out)
    return {"out": str(out), "summary": "kappa " + ", ".join(
        f"{f} {_num(rep[f]['kappa'])}" for f in ("refused", "attempted", "harmful"))}


def stage_guard(ctx: LabContext) -> dict[str, Any]:
    from alignlab.data import load_packaged
    from alignlab.data.splits import behavior_split
    from alignlab.guard import DataConfig, TrainConfig, build_and_train, examples_from_run, load_constitution
    from alignlab.guard.data import DEFAULT_AUGMENT

    c = ctx.config
    g = c.guard
    con = load_constitution(g.constitution)
    run_examples, from_runs = [], []
    rt = ctx.done.get("redteam")
    if rt:
        held = {b.id for b in behavior_split(load_packaged())[1]}
        run = ctx.workspace.read_run(rt["run_id"])
        run_examples = examples_from_run(run.records(), rt["run_id"], set(run.info.config["behaviors"]) - held)
        from_runs = [rt["run_id"]]
    target = ctx.target()
    helper = ctx.role("helper") if g.generate or g.paraphrase else None
    dcfg = DataConfig(generate_per_side=g.generate, paraphrases=g.paraphrase and helper is not None,
                      augment_attacks=DEFAULT_AUGMENT, augment_per_query=g.augment_per_query,
                      response_tokens=g.response_tokens, respond_wrapped=g.respond_wrapped, seed=c.seed)
    tcfg = TrainConfig(backbone=g.backbone, fpr=g.fpr, chunk_tokens=32 if g.backbone == "embed" else 16,
                       seed=c.seed, cascade_recall=g.cascade_recall)
    ctx.log(f"guard: {g.backbone} from {con.name} ({len(con.categories)} categories) + "
            f"{len(run_examples)} examples of the red-team run")
    from alignlab.data.splits import load_borderline
    from alignlab.guard import calibrate_guard

    bl_cal = load_borderline("calibration")
    with ctx.progress("guard data") as p:
        guard = build_and_train(con, ctx.dir("guard"), dcfg, tcfg, helper=helper,
                                responder=target if g.response_tokens else None, target=target,
                                run_examples=run_examples, from_runs=from_runs, progress=p,
                                hard_negatives=[(cat, q) for _, cat, q in bl_cal] if g.borderline == "train" else (),
                                pool_behaviors=g.pool_behaviors)
    cal = None
    if g.borderline == "calibrate":
        prompts = [q for _, _, q in bl_cal]
        ctx.log(f"guard: calibrating thresholds on {len(prompts)} borderline prompts (the calibration half)")
        with ctx.progress("guard calibration") as p:
            cal = calibrate_guard(guard, target, prompts, fpr=g.fpr, source="packaged borderline, calibration half",
                                  max_new_tokens=c.reattack.max_new_tokens, progress=p)
    m = guard.config["metrics"]
    key = next((k for k in ("cascade.input", "probe.input", "embed.input") if k in m), None)
    return {"out": str(ctx.out / "guard"), "guard_id": guard.id, "n_examples": guard.config["data"]["n"],
            "calibration": {k: cal[k] for k in ("n", "fpr", "blocked_before", "blocked_after")} if cal else None,
            "summary": f"{guard.id}: {guard.config['data']['n']} examples"
                       + (f"; test-split {key} recall {_pct(m[key].get('recall'))}" if key else "")
                       + (f"; calibration blocks {cal['blocked_before']} -> {cal['blocked_after']} of "
                          f"{cal['n']} borderline prompts" if cal else "")}


def _borderline_sample(rows: list[tuple[str, str, str]], k: int) -> list[tuple[str, str, str]]:
    """``k`` of the (id, category, prompt) rows, one category at a time in turn (file order within
    a category), so every category is represented as evenly as ``k`` allows."""
    from alignlab.stats import round_robin

    by_cat: dict[str, list] = {}
    for r in rows:
        by_cat.setdefault(r[1], []).append(r)
    return round_robin([list(reversed(v)) for v in by_cat.values()], k)


def stage_reattack(ctx: LabContext) -> dict[str, Any]:
    from alignlab.data import filter_behaviors, load_packaged
    from alignlab.data.splits import behavior_split, load_borderline
    from alignlab.guard import GuardEvalConfig, load_guard, run_guard_eval
    from alignlab.redteam.attacks import get_attacks

    c = ctx.config
    r = c.reattack
    guard = load_guard(ctx.done["guard"]["out"])
    held = filter_behaviors(behavior_split(load_packaged())[1], None, r.limit, c.seed)
    bl = load_borderline("evaluation")  # the other half may have trained or calibrated the guard
    if r.borderline is not None:
        bl = _borderline_sample(bl, r.borderline)
    attacks = get_attacks(",".join(r.attacks))
    adaptive = get_attacks(",".join(r.adaptive)) if r.adaptive else []
    out = ctx.dir("reattack")
    cfg = GuardEvalConfig(budget=r.budget, seed=c.seed, max_new_tokens=r.max_new_tokens,
                          latency_samples=r.latency_samples,
                          extra={"target_spec": c.target, "judge_spec": c.judge, "lab": ctx.run.id})
    ctx.log(f"re-attack: {len(held)} held-out behaviors x {len(attacks)} attacks, unguarded and guarded, "
            f"{len(bl)} borderline prompts")
    with ctx.progress("re-attack") as p:
        res = run_guard_eval(ctx.target(), guard, _judge(ctx), held, attacks, ctx.workspace, cfg, borderline=bl,
                             cached_target=ctx.target(cached=True), out_dir=out, on_progress=p)
    summary = (f"attempted compliance {_pct(res['compliance_unguarded'])} -> {_pct(res['compliance_guarded'])}, "
               f"over-refusal {_pct(res['over_refusal_unguarded'])} -> {_pct(res['over_refusal_guarded'])}")
    adaptive_res = None
    if adaptive:
        sub = filter_behaviors(held, None, r.adaptive_limit, c.seed) if r.adaptive_limit else held
        adaptive_res = _adaptive(ctx, guard, sub, adaptive, out)
        res.data["adaptive"] = adaptive_res  # the guard eval's results carry it, for the scorecard
        summary += "; adaptive " + ", ".join(f"{k} ASR {_pct(v['asr'])}, compliance {_pct(v['compliance'])}"
                                             for k, v in adaptive_res["by_attack"].items())
    res.save()
    return {"out": str(out), "summary": summary, "adaptive": adaptive_res}


def _adaptive(ctx: LabContext, guard, behaviors, attacks, out: Path) -> dict[str, Any]:
    """Attacker-model attacks against the guarded target: they see the guard's refusals as feedback."""
    from alignlab.guard import GuardedModel
    from alignlab.redteam.engine import RedteamConfig, run_redteam

    c = ctx.config
    guarded = GuardedModel(ctx.target(), guard)
    cfg = RedteamConfig(budget=c.reattack.adaptive_budget, seed=c.seed, max_new_tokens=c.reattack.max_new_tokens,
                        attacker_max_new_tokens=c.reattack.attacker_max_new_tokens, benign=False,
                        extra={"guard": guard.id, "adaptive": True, "target_spec": c.target,
                                             "attacker_spec": c.helper, "lab": ctx.run.id})
    ctx.log(f"adaptive attacks against the guarded target: {', '.join(a.name for a in attacks)} "
            f"(attacker {c.helper}, budget {c.reattack.adaptive_budget})")
    with ctx.progress("adaptive") as p:
        res = run_redteam(guarded, _judge(ctx), behaviors, attacks, ctx.workspace, cfg,
                          attacker=ctx.role("helper"), out_dir=out / "adaptive", on_progress=p)
    res.save()
    by = {a: {"asr": v["asr"]["rate"], "asr_rate": v["asr"], "compliance": v["compliance"]["rate"],
              "compliance_rate": v["compliance"], "queries_per_success": v.get("queries_per_success")}
          for a, v in res["by_attack"].items()}
    summary = {"run_id": res["run_id"], "attacker": c.helper, "budget": c.reattack.adaptive_budget,
               "behavior_asr": res["behavior_asr"], "behavior_compliance": res["behavior_compliance"], "by_attack": by}
    (out / "adaptive" / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def stage_evals(ctx: LabContext) -> dict[str, Any]:
    from alignlab.evals.items import resolve_items
    from alignlab.evals.runner import run_eval
    from alignlab.evals.score import EvalConfig
    from alignlab.judges.harm import HeuristicJudge, LLMJudge
    from alignlab.judges.rubric import EvalJudge, RubricJudge

    c = ctx.config
    e = c.evals
    items = resolve_items(",".join(e.suites), None, e.limit, c.seed)
    if e.judge == "none":
        judge = EvalJudge(None, HeuristicJudge())
    else:
        jm = ctx.role(e.judge)
        judge = EvalJudge(RubricJudge(jm), LLMJudge(jm))
    cfg = EvalConfig(max_new_tokens=e.max_new_tokens, seed=c.seed, max_steps=e.max_steps)
    extra = {"model_spec": c.target, "judge_spec": e.judge, "limit": e.limit, "lab": ctx.run.id}
    resume = _unfinished(ctx.workspace, "evals", ctx.run.info.created, {"lab": ctx.run.id})
    ctx.log(f"evals: {len(items)} items in {len({i.suite for i in items})} suites, judge {judge.name}"
            + (f" (resuming {resume})" if resume else ""))
    with ctx.progress("evals") as p:
        res = run_eval(ctx.target(cached=True), items, judge, ctx.workspace, cfg, resume=resume,
                       out_dir=ctx.dir("evals"), on_progress=p, extra=extra)
    res.save()
    return {"run_id": res["run_id"], "out": str(ctx.out / "evals"),
            "summary": ", ".join(f"{k} {_pct(v['rate'])}" for k, v in res["suites"].items())}


def stage_interp(ctx: LabContext) -> dict[str, Any]:
    from alignlab.interp.capture import CaptureConfig, capture
    from alignlab.interp.corpus import open_corpus
    from alignlab.interp.pipeline import autointerp_sae, evaluate_sae
    from alignlab.interp.train import SAETrainConfig, train_saes

    c = ctx.config
    it = c.interp
    model = ctx.target()
    n_layers = model.model.config.get_text_config().num_hidden_layers if hasattr(model, "model") else None
    if n_layers is None:
        from alignlab.models.base import WhiteBoxRequired

        raise WhiteBoxRequired(f"the interp stage reads activations; {c.target} is a black-box model: "
                               f"use an embedded: or hf: target, or drop 'interp' from stages")
    layer = it.layer if it.layer is not None else n_layers // 2
    acts_dir, sae_dir, feat_dir = ctx.dir("interp/acts"), ctx.out / "interp" / "sae", ctx.dir("interp/features")
    ccfg = CaptureConfig(layers=(layer,), tokens=it.tokens, corpus="default",
                         extra={"model_spec": c.target, "model_dtype": "float32"})
    ctx.log(f"interp: capture {it.tokens:,} tokens at layer {layer}, SAE x{it.expansion} k={it.k}, "
            f"auto-interp of {it.n_latents} latents ({it.explainer} / {it.scorer})")
    with ctx.progress("transcripts") as p:
        docs = open_corpus("default", model=model, workdir=acts_dir, n_transcripts=it.transcripts,
                           progress=lambda d, t: p("transcripts", d, t))
        store = capture(model, docs, acts_dir, ccfg, progress=lambda d, t: p("capture tokens", d, t))
        key = f"resid.{layer}"
        train_saes(store, [key], SAETrainConfig(expansion=it.expansion, k=it.k, batch_size=it.batch_size,
                                                seed=c.seed), sae_dir,
                   progress=lambda d, t: p("SAE training tokens", d, t))
        metrics = evaluate_sae(sae_dir / key, store, model, tokens=min(it.tokens, 200_000),
                               ce_contexts=it.ce_contexts, progress=p, model_spec=c.target)

        def pick(name: str):
            if name == "lexical":
                from alignlab.interp.lexical import LexicalModel

                return LexicalModel()
            return ctx.role(name)

        ex = pick(it.explainer)
        sc = ex if it.scorer == it.explainer else pick(it.scorer)
        res = autointerp_sae(sae_dir / key, store, feat_dir, ex, sc, target=model, tokens=it.context_tokens,
                             n_latents=it.n_latents, n_neurons=it.n_neurons, n_random=it.n_random, seed=c.seed,
                             progress=p, title=f"Features of {c.target}, layer {layer}")
    res.save()
    frac = res["interpretable_frac"]
    ctx.workspace.log_result("autointerp", {"sae": str(sae_dir / key), "explainer": ex.identity,
                                            "scorer": sc.identity, "lab": ctx.run.id},
                             {"interpretable_frac": frac.get("rate")}, feat_dir)
    return {"out": str(ctx.out / "interp"), "layer": layer,
            "summary": f"FVU {_num(metrics['fvu'])}, CE score {_num(metrics.get('ce_score'))}; interpretable "
                       f"{_pct(frac.get('rate'))} ({frac.get('k')}/{frac.get('n')}) with {ex.identity}"}


def stage_strategy(ctx: LabContext) -> dict[str, Any]:
    from alignlab.strategy.scorecard import build_scorecard, collect_evidence

    ev = collect_evidence(ctx.workspace, lab_run_ids(ctx))
    card = build_scorecard(ev, base=ctx.out)
    ctx.log("strategy: observations from this lab's runs, allocation under prior and posterior, field progress")
    res = compute_strategy(card, ev, ctx.config, ctx.dir("strategy"))
    alloc = res["allocation"]
    applied = [o["id"] for o in res["observations"] if o["applied"]]
    return {"out": str(ctx.out / "strategy"), "result": res,
            "summary": f"{len(applied)} observation(s) applied ({', '.join(applied) or 'none'}); optimal EV "
                       f"{alloc['expected_value']:.3f}; most budget to level {_top(alloc['allocation'])} "
                       f"(under the prior: level {_top(alloc['evidence']['allocation_under_prior'])})"}


STAGE_FUNCS: dict[str, Callable[[LabContext], dict[str, Any]]] = {
    "redteam": stage_redteam, "judges": stage_judges, "guard": stage_guard, "reattack": stage_reattack,
    "evals": stage_evals, "interp": stage_interp, "strategy": stage_strategy,
}


def lab_run_ids(ctx: LabContext) -> dict[str, str]:
    """The workspace runs this lab produced, by scorecard kind (its stages' runs only)."""
    ids: dict[str, str] = {}
    for r in ctx.workspace.runs():
        lab = r.config.get("lab") or (r.config.get("extra") or {}).get("lab")
        if lab != ctx.run.id or r.status != "done":
            continue
        kind = r.stage
        if kind == "redteam" and r.config.get("guard"):
            continue
        ids[kind] = r.id
    return ids


def write_lab_outputs(ctx, seconds: float) -> dict[str, Any]:
    """The lab run's results.json and report.html (at the end of :func:`run_lab`)."""
    strat = ctx.done.get("strategy", {}).get("result")
    return build_lab_results(ctx.workspace, ctx.out, ctx.config, run_ids=lab_run_ids(ctx),
                             stages={k: {kk: vv for kk, vv in v.items() if kk != "result"}
                                     for k, v in ctx.done.items()},
                             strategy=strat, lab_run=ctx.run.id, seconds=seconds)


# ----------------------------------------------------------------------------------- the loop
def run_lab(config: LabConfig, workspace, out_dir: str | Path, *, resume: str | None = None,
            log: Log = print, progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Run (or resume) the lab loop and build its report; returns the lab's ``results.json``.

    Args:
        config: the lab config.
        workspace: the run store.
        out_dir: where each stage's folder, ``results.json`` and ``report.html`` go.
        resume: a lab run id; its finished stages are skipped (default: the run named in
            ``OUT/lab.json`` when that file exists and its config matches).
        log: one line per event.
        progress: ``progress(first_phase)`` -> context manager yielding a ``(phase, done, total)``
            callback (default: no bars).
    """
    import contextlib

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    snapshot = config.model_dump()
    state_file = out / "lab.json"
    if resume is None and state_file.exists():
        prev = json.loads(state_file.read_text())
        if prev.get("config") != snapshot:
            raise LabError(f"{out} holds a lab run ({prev.get('run_id')}) with a different config; use a new --out, "
                           f"or the same config to resume it")
        resume = prev.get("run_id")
    if resume:
        run = workspace.open_run(resume)
        if run.info.config != snapshot:
            raise LabError(f"--resume {resume}: that lab run was started with a different config")
    else:
        run = workspace.new_run("lab", snapshot)
    state_file.write_text(json.dumps({"run_id": run.id, "config": snapshot}, indent=1))

    @contextlib.contextmanager
    def no_bars(_first: str):
        yield lambda *a: None

    ctx = LabContext(config, workspace, out, run, log, progress or no_bars)
    ctx.done = {k.split("|", 1)[1]: v for k, v in run.records("stage|")}
    t0 = time.time()
    try:
        for name in STAGES:
            if name not in config.stages:
                continue
            if name in ctx.done:
                log(f"[{name}] done earlier: {ctx.done[name].get('summary', '')}")
                continue
            t = time.time()
            res = STAGE_FUNCS[name](ctx)
            res["seconds"] = round(time.time() - t, 1)
            run.add(f"stage|{name}", res)
            ctx.done[name] = res
            log(f"[{name}] {res['seconds']:.0f}s: {res.get('summary', '')}")
        results = write_lab_outputs(ctx, time.time() - t0)
    except BaseException as e:
        run.fail(f"{type(e).__name__}: {e}")
        raise
    run.finish({"out_dir": str(out.resolve()), "stages": {k: v.get("seconds") for k, v in ctx.done.items()}})
    return results


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _top(x: list[float]) -> int:
    return max(range(len(x)), key=lambda i: x[i]) + 1


__all__ = ["STAGES", "LabContext", "LabError", "run_lab"]
