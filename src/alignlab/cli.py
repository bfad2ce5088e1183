"""alignlab command line: thin wrappers that parse, call one public function, and print."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Column, Table

app = typer.Typer(help="alignlab: a local-first lab for AI-assisted alignment.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
models_app = typer.Typer(help="Embedded models: list and convert.", no_args_is_help=True)
judge_app = typer.Typer(help="Judges: validate against hand labels.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(judge_app, name="judge")
guard_app = typer.Typer(help="Constitutional classifiers: train a guard, evaluate it.", no_args_is_help=True)
app.add_typer(guard_app, name="guard")
console = Console(stderr=True)
out = Console()

DEFAULT_TARGET = "embedded:smollm2-135m-instruct"


def _fail(message: str) -> None:
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, emoji=False)
    raise typer.Exit(2)


def _quiet_hf() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _ci(ci) -> str:
    return "" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


@contextlib.contextmanager
def _progress(first: str):
    """A rich progress bar; yields a ``(phase, done, total)`` callback.

    Without a terminal rich draws nothing live, so a line is printed every 10% instead.
    """
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(first, total=None)
        last = {"phase": None, "step": -1}

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)
            step = max(1, total // 10)
            if not console.is_terminal and (phase != last["phase"] or done // step != last["step"]
                                            or done == total):
                last["phase"], last["step"] = phase, done // step
                console.print(f"{phase}: {done}/{total}", highlight=False)

        yield progress


# --------------------------------------------------------------------------------------- models
@models_app.command("list")
def models_list() -> None:
    """Show the embedded models, whether their package is installed and whether they are pulled."""
    from alignlab.models import embedded

    t = Table(Column("name", no_wrap=True), "kind", "package installed", "pulled", "path / how to get it")
    for m in embedded.listing():
        how = m["path"] if m["pulled"] else embedded.get(str(m["name"])).install
        t.add_row(str(m["name"]), str(m["kind"]), "yes" if m["installed"] else "no",
                  "yes" if m["pulled"] else "no", how)
    out.print(t)


@models_app.command("pull")
def models_pull(name: str, force: bool = typer.Option(False, help="Convert again even if present.")) -> None:
    """Convert an embedded model's packaged GGUF into a plain HF directory in the cache (once)."""
    _quiet_hf()
    from alignlab.models import embedded

    try:
        m = embedded.get(name)
        if not m.package_installed:
            raise embedded.ModelNotInstalled(name)
        path = embedded.pull(name, force=force, log=lambda s: console.print(s))
    except (KeyError, RuntimeError) as e:
        _fail(str(e).strip("'\""))
    out.print(str(path))


# --------------------------------------------------------------------------------------- serve
@app.command()
def serve(model: str = typer.Option(DEFAULT_TARGET, help="Model spec to serve."),
          host: str = "127.0.0.1", port: int = 8000,
          batch_size: int = typer.Option(32, help="Rows per batch for hf/embedded models.")) -> None:
    """Serve a model over an OpenAI-compatible API (for other tools, or another alignlab)."""
    _quiet_hf()
    from alignlab.models import SpecError, load_model
    from alignlab.models.server import serve as _serve

    try:
        m = load_model(model, batch_size=batch_size)
    except (SpecError, RuntimeError, FileNotFoundError) as e:
        _fail(str(e))
    handle = _serve(m, host=host, port=port, model_name=model)
    console.print(f"serving {model} at {handle.url} (Ctrl-C to stop)")
    try:
        import time

        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        handle.stop()


# --------------------------------------------------------------------------------------- redteam
@app.command()
def redteam(
    target: str = typer.Option(DEFAULT_TARGET, help="Model under test (spec)."),
    attacker: Optional[str] = typer.Option(None, help="Attacker model spec for pair/tap/crescendo."),
    judge: str = typer.Option("heuristic", help="'heuristic' or a judge model spec."),
    judge_mode: str = typer.Option("auto", help="LLM judge mode: auto, generate or logprob."),
    behaviors: Optional[Path] = typer.Option(None, help="HarmBench/JailbreakBench CSV or prompt file."),
    attacks: str = typer.Option("templates", help="Comma list, or all / templates / llm."),
    categories: Optional[str] = typer.Option(None, help="Comma list of categories to keep."),
    limit: Optional[int] = typer.Option(None, help="Behaviors to use, stratified by category."),
    split: str = typer.Option("all", help="all, pool (the half guards may train on) or held-out "
                                          "(the half guard eval measures on)."),
    budget: int = typer.Option(1, help="Target queries per attack and behavior."),
    seed: int = typer.Option(0),
    max_new_tokens: int = typer.Option(128, help="Target reply length."),
    batch_size: int = typer.Option(32, help="Rows per batch for hf/embedded models."),
    concurrency: int = typer.Option(8, help="Parallel requests for openai models."),
    workspace: Path = typer.Option(Path("alignlab-runs"), help="Run store folder."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Where results go (default: the run's artifacts)."),
    resume: Optional[str] = typer.Option(None, help="Run id to resume."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Bypass the completion cache."),
    no_benign: bool = typer.Option(False, "--no-benign", help="Skip the over-refusal check."),
    list_attacks: bool = typer.Option(False, "--list-attacks", help="List attacks and exit."),
) -> None:
    """Red-team a target: behaviors x attacks, judged, with ASR and 95% CIs, hits and a report."""
    from alignlab.redteam.attacks import get_attacks, list_attacks as _list

    if list_attacks:
        t = Table("name", "kind", "needs attacker", "description")
        for a in _list():
            t.add_row(a["name"], a["kind"], "yes" if a["needs_attacker"] else "no", a["description"])
        out.print(t)
        return
    _quiet_hf()
    from alignlab.data import DataError, filter_behaviors, load_behaviors
    from alignlab.models import SpecError, load_model
    from alignlab.redteam.engine import RedteamConfig, run_redteam
    from alignlab.judges.harm import make_judge
    from alignlab.store import RunNotFound, Workspace

    try:
        bs = load_behaviors(behaviors)
        if split != "all":
            from alignlab.data.splits import behavior_split

            if split not in ("pool", "held-out"):
                raise ValueError(f"--split must be all, pool or held-out, not {split!r}")
            bs = behavior_split(bs)[0 if split == "pool" else 1]
        bs = filter_behaviors(bs, categories.split(",") if categories else None, limit, seed)
        atk = get_attacks(attacks)
    except (DataError, ValueError) as e:
        _fail(str(e))
    ws = Workspace(workspace)
    cache = None if no_cache else ws.root / "completions.sqlite"
    opts = {"batch_size": batch_size, "concurrency": concurrency}
    try:
        tgt = load_model(target, cache=cache, **opts)
        att = load_model(attacker, cache=cache, **opts) if attacker else None
        jdg = make_judge(judge, cache=cache, judge_mode=judge_mode, **opts)
    except (SpecError, RuntimeError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    cfg = RedteamConfig(budget=budget, seed=seed, max_new_tokens=max_new_tokens, benign=not no_benign,
                        extra={"target_spec": target, "attacker_spec": attacker, "judge_spec": judge,
                               "behaviors_file": str(behaviors) if behaviors else "packaged"})
    console.print(f"red-team: {len(bs)} behaviors x {len(atk)} attacks on {target} "
                  f"(judge {jdg.name}, budget {budget})")
    with _progress("attack streams") as progress:
        try:
            res = run_redteam(tgt, jdg, bs, atk, ws, cfg, attacker=att, resume=resume,
                              out_dir=out_dir, on_progress=progress)
        except (RunNotFound, ValueError) as e:
            _fail(str(e).strip("'\""))
    _print_summary(res)
    where = out_dir or ws.artifacts_dir(res["run_id"])
    out.print(f"\nrun id {res['run_id']}  ->  {where}/results.json, hits.jsonl, report.html")


def _print_summary(res: dict) -> None:
    b = res["behavior_asr"]
    c = res["behavior_compliance"]
    out.print(f"\nASR (harmful, behavior-level): {_pct(res['asr'])} {_ci(res['asr_ci'])}  "
              f"{b['k']}/{b['n']} behaviors, {res['n_unscorable']} unscorable")
    out.print(f"attempted compliance:          {_pct(res['compliance_rate'])} "
              f"{_ci(res['compliance_rate_ci'])}  {c['k']}/{c['n']}")
    a = res["attempt_asr"]
    out.print(f"attempt-level ASR:             {_pct(a['rate'])} {_ci(a['ci'])}  {a['k']}/{a['n']}, "
              f"{a['n_unscorable']} unscorable")
    if res.get("over_refusal"):
        o = res["over_refusal"]
        out.print(f"over-refusal on benign:        {_pct(o['rate'])} {_ci(o['ci'])}  {o['k']}/{o['n']}")
    t = Table("attack", "kind", "ASR", "95% CI", "k/n", "unscorable", "compliance", "queries/success")
    for name, r in res["by_attack"].items():
        qps = r["queries_per_success"]
        t.add_row(name, r["kind"], _pct(r["asr"]["rate"]), _ci(r["asr"]["ci"]),
                  f"{r['asr']['k']}/{r['asr']['n']}", str(r["asr"]["n_unscorable"]),
                  _pct(r["compliance"]["rate"]), "n/a" if qps is None else f"{qps:.1f}")
    out.print(t)
    if res.get("judge_caveat"):
        console.print(f"[yellow]judge caveat:[/] {res['judge_caveat']}", highlight=False)


# --------------------------------------------------------------------------------------- judge
@judge_app.command("validate")
def judge_validate(
    labels: Optional[Path] = typer.Option(None, help="Labels JSONL (default: the packaged set)."),
    judge: str = typer.Option("heuristic", help="'heuristic' or a judge model spec."),
    judge_mode: str = typer.Option("auto", help="LLM judge mode: auto, generate or logprob."),
    split: str = typer.Option("all", help="all, dev (used to design judges) or test (held out)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the report as JSON here."),
    batch_size: int = typer.Option(32),
) -> None:
    """Agreement of a judge with hand labels: accuracy, Cohen's kappa, precision, recall."""
    _quiet_hf()
    from alignlab.data import DataError
    from alignlab.models import SpecError
    from alignlab.judges.harm import make_judge
    from alignlab.judges.validate import FIELDS, load_labels, validate_judge

    try:
        rows = load_labels(labels, split)
        j = make_judge(judge, judge_mode=judge_mode, batch_size=batch_size)
    except (DataError, SpecError, RuntimeError, ValueError) as e:
        _fail(str(e))
    rep = validate_judge(j, rows)
    t = Table("field", "n", "unscorable", "base rate", "accuracy", "95% CI", "kappa", "precision", "recall")
    for f in FIELDS:
        r = rep[f]
        fmt = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
        t.add_row(f, str(r["n"]), str(r["n_unscorable"]), fmt(r["base_rate"]), fmt(r["accuracy"]),
                  _ci(r.get("accuracy_ci")), fmt(r["kappa"]), fmt(r["precision"]), fmt(r["recall"]))
    out.print(f"judge {rep['judge']} on {rep['n_labels']} labelled responses (split: {split})")
    out.print(t)
    if out_file:
        out_file.write_text(json.dumps(rep, indent=2))


# --------------------------------------------------------------------------------------- guard
@guard_app.command("train")
def guard_train(
    out_dir: Path = typer.Option(..., "--out", help="Guard directory to write."),
    constitution: Optional[Path] = typer.Option(None, help="Constitution YAML/Markdown (default: packaged)."),
    from_run: list[str] = typer.Option([], "--from-run", help="Red-team run id whose hits to add (repeatable)."),
    backbone: str = typer.Option("embed", help="embed, probe or cascade."),
    target: str = typer.Option(DEFAULT_TARGET, help="Model to guard: answers the training requests; "
                                                    "probes read its activations."),
    helper: str = typer.Option("target", help="Model that writes requests and paraphrases "
                                              "('target', a spec, or 'none')."),
    generate: int = typer.Option(8, help="Helper-written requests per category and side."),
    paraphrase: bool = typer.Option(True, help="One helper paraphrase per seed request."),
    augment: str = typer.Option("default", help="Attack templates used as augmentation ('default', a "
                                                "comma list, or 'none'); the others stay held out."),
    augment_per_query: int = typer.Option(3, help="Wrapped versions per request."),
    response_tokens: int = typer.Option(64, help="Response length for output-classifier data (0: none)."),
    respond_wrapped: int = typer.Option(1, help="Wrapped versions per request the target answers too, "
                                                "so output classifiers see replies under jailbreak templates."),
    fpr: float = typer.Option(0.01, help="Target false-positive rate on benign data, per classifier."),
    chunk_tokens: Optional[int] = typer.Option(None, help="Streaming check interval (default 32 embed, 16 probe)."),
    layers: Optional[str] = typer.Option(None, help="Comma list of hidden-state layers for probes."),
    cascade_recall: float = typer.Option(0.98, help="Cascade: probe scores below the level keeping this "
                                                    "recall pass unescalated (lower: less overhead)."),
    borderline_negatives: bool = typer.Option(False, help="Train on the calibration half of the packaged "
                                                          "borderline set as permitted examples (hard "
                                                          "negatives); guard eval uses the other half."),
    pool_behaviors: bool = typer.Option(False, help="Also train on every behavior of the packaged pool "
                                                    "half (restricted) and its benign counterpart "
                                                    "(permitted); never the held-out half."),
    workspace: Path = typer.Option(Path("alignlab-runs"), help="Run store (for --from-run)."),
    seed: int = typer.Option(0),
    batch_size: int = typer.Option(32),
) -> None:
    """Constitution -> synthetic data (+ red-team hits) -> classifiers -> a guard directory."""
    _quiet_hf()
    from alignlab.guard import (ConstitutionError, DataConfig, LeakageError, TrainConfig, build_and_train,
                                examples_from_run, load_constitution)
    from alignlab.guard.data import DEFAULT_AUGMENT
    from alignlab.models import SpecError, load_model
    from alignlab.store import RunNotFound, Workspace

    try:
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
    except (ConstitutionError, SpecError, RuntimeError, FileNotFoundError, ValueError, RunNotFound) as e:
        _fail(str(e).strip("'\""))
    chunk = chunk_tokens or (32 if backbone == "embed" else 16)
    dcfg = DataConfig(generate_per_side=generate, paraphrases=paraphrase, augment_attacks=aug,
                      augment_per_query=augment_per_query, response_tokens=response_tokens,
                      respond_wrapped=respond_wrapped, seed=seed)
    tcfg = TrainConfig(backbone=backbone, fpr=fpr, chunk_tokens=chunk, seed=seed, cascade_recall=cascade_recall,
                       layers=tuple(int(x) for x in layers.split(",")) if layers else ())
    console.print(f"guard train: {con.name} ({len(con.categories)} categories), backbone {backbone}, "
                  f"target {target}, {len(run_examples)} examples from red-team runs")
    with _progress("building data") as progress:
        try:
            from alignlab.data.splits import load_borderline

            negs = [(c, p) for _, c, p in load_borderline("calibration")] if borderline_negatives else []
            g = build_and_train(con, out_dir, dcfg, tcfg, helper=hlp, responder=tgt if response_tokens else None,
                                target=tgt, run_examples=run_examples, from_runs=from_run, progress=progress,
                                hard_negatives=negs, pool_behaviors=pool_behaviors)
        except (LeakageError, ValueError) as e:
            _fail(str(e))
        except Exception as e:  # WhiteBoxRequired and friends: one line
            if type(e).__name__ == "WhiteBoxRequired":
                _fail(str(e))
            raise
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


@guard_app.command("calibrate")
def guard_calibrate(
    guard: Path = typer.Option(..., help="Guard directory from 'alignlab guard train' (updated in place)."),
    target: str = typer.Option(DEFAULT_TARGET, help="The guarded model: its replies are scored by the "
                                                    "output classifier (and its activations by probes)."),
    benign: Optional[Path] = typer.Option(None, help="Benign prompts never evaluated, .txt/.csv/.jsonl "
                                                     "(default: the calibration half of the packaged "
                                                     "borderline set)."),
    fpr: float = typer.Option(0.01, help="Most of the benign prompts each classifier may block."),
    max_new_tokens: int = typer.Option(96, help="Reply length scored by the streaming output check "
                                                "(match guard eval's --max-new-tokens, default 96)."),
    batch_size: int = typer.Option(32),
) -> None:
    """Raise a trained guard's thresholds to block at most --fpr of benign prompts; no retraining.

    Scores are kept in the guard directory, so calibrating again at another --fpr generates nothing.
    """
    _quiet_hf()
    from alignlab.data import DataError
    from alignlab.data.behaviors import load_prompt_file
    from alignlab.data.splits import load_borderline
    from alignlab.guard import LeakageError, calibrate_guard, load_guard
    from alignlab.models import SpecError, load_model

    try:
        if not 0 <= fpr < 1:
            raise ValueError(f"--fpr must be in [0, 1), got {fpr}")
        g = load_guard(guard)
        prompts = [b.behavior for b in load_prompt_file(benign)] if benign else \
            [p for _, _, p in load_borderline("calibration")]
        tgt = load_model(target, batch_size=batch_size)
        console.print(f"guard calibrate: {g.id} ({g.backbone}) on {len(prompts)} benign prompts, "
                      f"replies from {target}, fpr {fpr:g} per classifier")
        with _progress("calibration replies") as progress:
            rec = calibrate_guard(g, tgt, prompts, fpr=fpr, max_new_tokens=max_new_tokens, progress=progress,
                                  source=str(benign) if benign else "packaged borderline, calibration half")
    except (DataError, SpecError, RuntimeError, FileNotFoundError, ValueError, LeakageError, TypeError) as e:
        if isinstance(e, TypeError) and type(e).__name__ != "WhiteBoxRequired":
            raise
        _fail(str(e))
    t = Table("classifier", "trained threshold", "calibrated", "blocks (trained)", "blocks (calibrated)")
    n = rec["n"]
    for k, h in rec["heads"].items():
        t.add_row(k, f"{h['trained']:.3f}", f"{h['calibrated']:.3f}",
                  f"{round(h['benign_block_rate_trained'] * n)}/{n}", f"{round(h['benign_block_rate'] * n)}/{n}")
    out.print(t)
    bound = "" if rec["exact"] else " (estimated: embedding heads are scored on word-cut prefixes)"
    out.print(f"guard refuses {rec['blocked_before']}/{n} -> {rec['blocked_after']}/{n} of these prompts{bound}")
    out.print(f"-> {guard}/config.json (thresholds), {guard}/calibration_scores.json")


@guard_app.command("eval")
def guard_eval(
    guard: Path = typer.Option(..., help="Guard directory from 'alignlab guard train'."),
    target: str = typer.Option(DEFAULT_TARGET, help="Model under test (spec)."),
    behaviors: Optional[Path] = typer.Option(None, help="Evaluation behaviors (default: the packaged "
                                                        "held-out half)."),
    benign: Optional[Path] = typer.Option(None, help="Extra benign prompts, .txt or .jsonl "
                                                     "(default: the evaluation half of the packaged "
                                                     "borderline set)."),
    attacks: str = typer.Option("templates", help="Comma list, or all / templates / llm."),
    attacker: Optional[str] = typer.Option(None, help="Attacker spec for pair/tap/crescendo (adaptive: "
                                                      "they see the guard's refusals)."),
    judge: str = typer.Option("heuristic", help="'heuristic' or a judge model spec."),
    stages: str = typer.Option("input,output", help="Guard stages: input, output, exchange."),
    chunk_tokens: Optional[int] = typer.Option(None, help="Streaming check interval (default: the guard's)."),
    limit: Optional[int] = typer.Option(None, help="Behaviors to use, stratified by category."),
    budget: int = typer.Option(1), seed: int = typer.Option(0),
    max_new_tokens: int = typer.Option(96, help="Target reply length."),
    latency_samples: int = typer.Option(16, help="Requests timed one at a time for p50/p95 latency."),
    batch_size: int = typer.Option(32),
    workspace: Path = typer.Option(Path("alignlab-runs"), help="Run store folder."),
    out_dir: Path = typer.Option(..., "--out", help="Where results.json and report.html go."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Bypass the completion cache (unguarded run)."),
) -> None:
    """Red-team the target with and without the guard: ASR, over-refusal, overhead, with CIs."""
    _quiet_hf()
    from alignlab.data import DataError, filter_behaviors, load_behaviors
    from alignlab.data.behaviors import load_packaged, load_prompt_file
    from alignlab.data.splits import behavior_split, load_borderline
    from alignlab.guard import GuardEvalConfig, LeakageError, load_guard, run_guard_eval
    from alignlab.models import SpecError, load_model
    from alignlab.redteam.attacks import get_attacks
    from alignlab.judges.harm import make_judge
    from alignlab.store import Workspace

    try:
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
    except (DataError, SpecError, RuntimeError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    cfg = GuardEvalConfig(budget=budget, seed=seed, max_new_tokens=max_new_tokens,
                          stages=tuple(s.strip() for s in stages.split(",") if s.strip()),
                          chunk_tokens=chunk_tokens, latency_samples=latency_samples,
                          extra={"target_spec": target, "judge_spec": judge, "attacker_spec": attacker,
                                 "behaviors_file": str(behaviors) if behaviors else "packaged held-out half",
                                 "benign_file": str(benign) if benign else "packaged borderline, evaluation half"})
    console.print(f"guard eval: {g.id} ({g.backbone}) on {target}: {len(bs)} behaviors x {len(atk)} attacks, "
                  f"{len(bl)} borderline prompts")
    with _progress("unguarded") as progress:
        try:
            res = run_guard_eval(tgt, g, jdg, bs, atk, ws, cfg, borderline=bl, attacker=att,
                                 cached_target=cached, out_dir=out_dir, on_progress=progress)
        except (LeakageError, ValueError) as e:
            _fail(str(e))
    _print_guard_summary(res)
    out.print(f"\n-> {out_dir}/results.json, report.html")


def _print_guard_summary(r: dict) -> None:
    def line(name: str, key: str) -> None:
        out.print(f"{name:<34} {_pct(r[key + '_unguarded'])} {_ci(r[key + '_unguarded_ci'])}  ->  "
                  f"{_pct(r[key + '_guarded'])} {_ci(r[key + '_guarded_ci'])}")

    out.print("")
    line("ASR (harmful, behavior-level)", "asr")
    line("attempted compliance", "compliance")
    line("over-refusal (benign + borderline)", "over_refusal")
    gb = r["over_refusal"].get("blocked_by_guard") or {}
    if gb.get("n"):
        out.print(f"{'  of which the guard blocked':<34} {gb['k']}/{gb['n']} {_ci(gb['ci'])}")
    ov, lat = r["overhead"], r["latency"]
    out.print(f"{'overhead per generated token':<34} {_pct(ov['wall_per_token'])} wall, "
              f"{_pct(ov['added_flops_ratio'])} added FLOPs")
    if lat.get("n"):
        out.print(f"{'added latency (one request)':<34} p50 {lat['p50_added_s']:.3f}s, p95 {lat['p95_added_s']:.3f}s")
    h = r["asr_heldout_attacks"]
    if h["guarded"]["n"]:
        hc = (h["unguarded"].get("compliance") or {}, h["guarded"].get("compliance") or {})
        out.print(f"{'attacks held out of training':<34} ASR {_pct(h['unguarded']['rate'])} -> "
                  f"{_pct(h['guarded']['rate'])}, compliance {_pct(hc[0].get('rate'))} -> "
                  f"{_pct(hc[1].get('rate'))} ({', '.join(h['guarded']['attacks'])})")
    a_u, a_g = r.get("attempt_compliance_unguarded"), r.get("attempt_compliance_guarded")
    if a_u and a_g:
        out.print(f"{'attempt-level compliance':<34} {_pct(a_u['rate'])} {_ci(a_u['ci'])} ({a_u['k']}/{a_u['n']})"
                  f"  ->  {_pct(a_g['rate'])} {_ci(a_g['ci'])} ({a_g['k']}/{a_g['n']})")
    if r.get("judge_caveat"):
        console.print(f"[yellow]judge caveat:[/] {r['judge_caveat']}", highlight=False)


# --------------------------------------------------------------------------------------- runs
@app.command()
def runs(workspace: Path = typer.Option(Path("alignlab-runs"), help="Run store folder.")) -> None:
    """List the runs in a workspace."""
    from alignlab.store import Workspace

    if not (workspace / "runs.sqlite").exists():
        _fail(f"no workspace at {workspace}; run 'alignlab redteam' first or pass --workspace")
    ws = Workspace(workspace)
    t = Table("run id", "stage", "status", "records", "ASR", "out")
    for r in ws.runs():
        m = r.metrics or {}
        from alignlab.store import Run

        t.add_row(r.id, r.stage, r.status, str(Run(ws, r.id).count()), _pct(m.get("asr")),
                  str(m.get("out_dir", "")))
    out.print(t)


# Registered last: the interp commands import the helpers above.
from alignlab.interp.cli import interp_app  # noqa: E402

app.add_typer(interp_app, name="interp")

from alignlab.evals.cli import eval_app  # noqa: E402
from alignlab.evals.persona_cli import persona_app  # noqa: E402

app.add_typer(eval_app, name="eval")
app.add_typer(persona_app, name="persona")

from alignlab.lab.cli import lab_cmd, report_cmd  # noqa: E402
from alignlab.strategy.cli import strategy_app  # noqa: E402

app.add_typer(strategy_app, name="strategy")
app.command("lab")(lab_cmd)
app.command("report")(report_cmd)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
