"""``alignlab eval``: run suites, validate judges, compare runs, generate items, export logs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from alignlab.cli.common import (
    DEFAULT_TARGET,
    EVAL,
    Defaults,
    batch_size_option,
    ci,
    concurrency_option,
    console,
    fail,
    judge_mode_option,
    no_cache_option,
    out,
    pct,
    progress,
    quiet_hf,
    resume_option,
    save,
    target_option,
    user_errors,
    workspace_option,
)

if TYPE_CHECKING:
    from alignlab.evals.result import EvalResult

app = typer.Typer(help="Behavioural evaluations: suites with judges, CIs and unscorable counts.",
                  invoke_without_command=True)

GENERATE = Defaults("alignlab.evals.generate:generate_eval")


@app.callback()
def eval_run(
    ctx: typer.Context,
    model: str = target_option("Model under evaluation (spec)."),
    suite: str | None = typer.Option(None, help="Suite name, a comma list, or 'all' (default: all "
                                                   "unless --items is given)."),
    items: Path | None = typer.Option(None, help="Extra items: alignlab JSONL or anthropics/evals JSONL."),
    judge: str = typer.Option(DEFAULT_TARGET, help="Judge model spec for free-form items, or 'none' "
                                                   "(then they are unscorable; misuse uses the heuristic)."),
    judge_mode: str = judge_mode_option("Judge mode: auto, generate or logprob."),
    limit: int | None = typer.Option(None, help="Items per suite, stratified by kind and subtype."),
    seed: int = typer.Option(EVAL.seed),
    max_new_tokens: int = typer.Option(EVAL.max_new_tokens, help="Reply length for free-form turns and agentic steps."),
    max_steps: int = typer.Option(EVAL.max_steps, help="Most model turns in an agentic rollout."),
    mc_mode: str = typer.Option(EVAL.mc_mode, help="Multiple choice: logprob, generate or auto."),
    persona: bool = typer.Option(False, "--persona", help="Also map persona space and drift (white-box)."),
    batch_size: int = batch_size_option(),
    concurrency: int = concurrency_option(),
    workspace: Path = workspace_option(),
    out_dir: Path | None = typer.Option(None, "--out", help="Where results go (default: the run's artifacts)."),
    resume: str | None = resume_option(),
    no_cache: bool = no_cache_option(),
) -> None:
    """Evaluate a model on behavioural suites: rates with 95% CIs, unscorable counts, a report."""
    if ctx.invoked_subcommand is not None:
        return
    quiet_hf()
    from alignlab.evals.items import resolve_items
    from alignlab.evals.runner import run_eval
    from alignlab.evals.score import EvalConfig
    from alignlab.judges.rubric import make_eval_judge
    from alignlab.models import load_model
    from alignlab.store import Workspace

    if mc_mode not in ("auto", "logprob", "generate"):
        fail(f"--mc-mode must be auto, logprob or generate, not {mc_mode!r}")
    with user_errors():
        its = resolve_items(suite or (None if items else "all"), items, limit, seed)
    ws = Workspace(workspace)
    cache = None if no_cache else ws.root / "completions.sqlite"
    opts = {"batch_size": batch_size, "concurrency": concurrency}
    with user_errors(RuntimeError, FileNotFoundError, ValueError):
        tgt = load_model(model, cache=cache, **opts)
        jdg = make_eval_judge(judge, mode=judge_mode, cache=cache, **opts)
    cfg = EvalConfig(max_new_tokens=max_new_tokens, seed=seed, max_steps=max_steps, mc_mode=mc_mode)
    names = sorted({it.suite for it in its})
    console.print(f"eval: {len(its)} items in {len(names)} suites ({', '.join(names)}) on {model}, "
                  f"judge {jdg.name}")
    with progress("items") as on_progress, user_errors(ValueError):
        res = run_eval(tgt, its, jdg, ws, cfg, resume=resume, out_dir=out_dir, on_progress=on_progress,
                       extra={"model_spec": model, "judge_spec": judge, "limit": limit,
                              "items_file": str(items) if items else None})
    where = Path(out_dir) if out_dir else ws.artifacts_dir(res["run_id"])
    if persona:
        _persona_into(tgt, res, where)
    save(res, where)
    print_summary(res)
    out.print(f"\nrun id {res['run_id']}  ->  {where}/results.json, samples.jsonl, report.html")


def _persona_into(model, res: EvalResult, where: Path) -> None:
    """Map persona space and drift on the target (a laptop-sized setting) into the eval's results.

    For the full settings run ``alignlab persona map|drift|cap`` (docs/guide/persona.md).
    """
    from alignlab.cli.persona import select_conversations
    from alignlab.evals.drift import persona_drift
    from alignlab.evals.persona import persona_map
    from alignlab.evals.persona_axis import AxisInfo
    from alignlab.evals.persona_data import load_drift, load_personas
    from alignlab.models.cache import CachedModel

    if isinstance(model, CachedModel):  # steering edits activations: cached replies would be stale
        model = model.inner
    pdir = where / "persona"
    with progress("persona map") as on_progress, user_errors():
        pm = persona_map(model, load_personas().limited(8, None, 12), out_dir=pdir, on_progress=on_progress,
                         coefficients=(-0.5, 0.0, 0.5))
        convs = select_conversations(load_drift(), 8, 6)
        dr = persona_drift(model, AxisInfo.load(pdir / "persona.json"), convs, pdir, on_progress=on_progress)
    res.data["persona"] = {"map": str(pdir / "persona.json"), "drift": str(pdir / "drift.json")}
    res.persona, res.drift = pm, dr


def print_summary(res: Mapping[str, Any]) -> None:
    """Print an eval run's results: one row per suite, what each rate counts, the controls."""
    from rich.table import Table

    t = Table("suite", "rate", "95% CI", "k/n", "unscorable", "judge refusals", "by kind (rate, k/n; mc chance)")
    for name, s in res["suites"].items():
        kinds = "; ".join(f"{k} {pct(r['rate'])} {r['k']}/{r['n']}" +
                          (f" (chance {pct(r['chance'])})" if r.get("chance") is not None else "")
                          for k, r in s["by_kind"].items())
        t.add_row(name, pct(s["rate"]), ci(s["ci"]), f"{s['k']}/{s['n']}", str(s["n_unscorable"]),
                  str(s["n_judge_refusals"]), kinds)
    out.print(t)
    for name, s in res["suites"].items():
        out.print(f"{name}: the rate counts items where the model {s['behaviour']}", highlight=False)
    for name, s in res["suites"].items():
        if s.get("control"):
            c = s["control"]
            out.print(f"{name} controls (no wrongdoing present): {pct(c['rate'])} {ci(c['ci'])} "
                      f"{c['k']}/{c['n']}")
    if res.get("judge_caveat"):
        console.print(f"[yellow]judge caveat:[/] {res['judge_caveat']}", highlight=False)


@app.command("validate-judge")
def validate_judge_cmd(
    judge: str = typer.Option(DEFAULT_TARGET, help="Judge model spec, or 'none' (the detector and "
                                                   "the heuristic harm judge only)."),
    judge_mode: str = judge_mode_option("auto, generate or logprob."),
    labels: Path | None = typer.Option(None, help="Labels JSONL (default: the packaged set)."),
    out_file: Path | None = typer.Option(None, "--out", help="Write the report as JSON here."),
    record: bool = typer.Option(False, "--record", help="Store the figures in the packaged "
                                                        "judge_agreement.json (run caveats quote them)."),
    batch_size: int = batch_size_option(value=16),
) -> None:
    """Agreement of a judge (and of the agentic detector) with hand labels, per suite."""
    quiet_hf()
    from rich.table import Table

    from alignlab.evals.validate import load_judge_labels, validate_eval_judge
    from alignlab.judges.rubric import make_eval_judge

    with user_errors(RuntimeError, ValueError):
        rows = load_judge_labels(labels)
        j = make_eval_judge(judge, mode=judge_mode, batch_size=batch_size)
    with progress("labelled transcripts") as on_progress:
        rep = validate_eval_judge(j, rows, on_progress=on_progress)
    t = Table("suite", "scorer", "n", "unscorable", "base rate", "accuracy", "95% CI", "kappa", "precision", "recall")
    fmt = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
    for suite, per in rep["suites"].items():
        for scorer, r in per.items():
            t.add_row(suite, scorer, str(r["n"]), str(r["n_unscorable"]), fmt(r.get("base_rate")),
                      fmt(r["accuracy"]), ci(r.get("accuracy_ci")), fmt(r["kappa"]),
                      fmt(r["precision"]), fmt(r["recall"]))
    out.print(f"judge {rep['judge']} on {rep['n_labels']} hand-labelled transcripts")
    out.print(t)
    if out_file:
        out_file.write_text(json.dumps(rep, indent=2))
    if record:
        from alignlab.evals.validate import record_agreement

        out.print(f"-> {record_agreement(rep)}")


@app.command("compare")
def compare_cmd(
    run_a: str = typer.Argument(..., help="Baseline: a run id, or an eval output folder (samples.jsonl)."),
    run_b: str = typer.Argument(..., help="Compared run: a run id or an output folder."),
    workspace: Path = workspace_option("Run store folder (for run ids)."),
    suite: str | None = typer.Option(None, help="Only these suites (comma list)."),
    out_file: Path | None = typer.Option(None, "--out", help="Write the comparison as JSON here."),
) -> None:
    """Paired comparison of two eval runs: B - A per suite with a paired bootstrap CI and McNemar p."""
    from rich.table import Table

    from alignlab.evals.compare import compare_runs

    with user_errors(ValueError):
        res = compare_runs(workspace, run_a, run_b,
                           suites=[s.strip() for s in suite.split(",")] if suite else None)
    t = Table("suite", "pairs", "rate A", "rate B", "B - A (pp)", "95% CI", "McNemar p",
              "A only", "B only", "missing")
    rows = list(res["suites"].items()) + [("overall", res["overall"])]
    for name, r in rows:
        t.add_row(name, str(r["n_pairs"]), pct(r["rate_a"]), pct(r["rate_b"]),
                  "n/a" if r["diff"] is None else f"{100 * r['diff']:+.1f}", ci(r["diff_ci"]),
                  "n/a" if r["p_value"] is None else f"{r['p_value']:.3g}",
                  str(r["a_only"]), str(r["b_only"]),
                  str(r["missing"]["from_a"] + r["missing"]["from_b"]))
    out.print(f"A = {res['a']} ({res['model_a']})   B = {res['b']} ({res['model_b']})")
    out.print(t)
    for w in res["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if out_file:
        out_file.write_text(json.dumps(res, indent=2))
        out.print(f"-> {out_file}")


@app.command("export-inspect")
def export_inspect_cmd(
    run: str = typer.Argument(..., help="A run id, or an eval output folder (samples.jsonl, results.json)."),
    out_file: Path = typer.Option(..., "--out", help="The inspect log to write (FILE.eval)."),
    workspace: Path = workspace_option("Run store folder (for run ids)."),
) -> None:
    """Write an eval run as an inspect_ai log; open it with `inspect view --log-dir DIR`."""
    from alignlab.evals.inspect_log import export_inspect

    with user_errors(ImportError, ValueError):  # ImportError: inspect_ai is not installed
        path = export_inspect(workspace, run, out_file)
    out.print(f"-> {path}  (inspect view --log-dir {path.parent})")


@app.command("generate")
def generate_cmd(
    out_dir: Path = typer.Option(..., "--out", help="Folder for generated.jsonl, generation.json (resumes)."),
    behaviour: str | None = typer.Option(None, help="One paragraph describing the behaviour to test."),
    behaviour_file: Path | None = typer.Option(None, help="A file holding that paragraph."),
    helper: str = target_option("Model that writes the items (a strong one helps)."),
    n: int = typer.Option(GENERATE.n, help="Scenarios to write (each becomes at most one item)."),
    kind: str = typer.Option(GENERATE.kind, help="mc or freeform."),
    variations: int = typer.Option(GENERATE.variations, help="Perturbations per seed scenario."),
    target: str | None = typer.Option(None, help="Roll the accepted items out on this model."),
    judge: str = typer.Option("none", help="Judge for free-form rollouts (a model spec)."),
    name: str | None = typer.Option(None, help="Name of the generated set (default: from the text)."),
    seed: int = typer.Option(GENERATE.seed),
    batch_size: int = batch_size_option(),
) -> None:
    """A helper model writes new items for a behaviour (understand, ideate, write, dedupe, filter, roll out)."""
    quiet_hf()
    from alignlab.evals.generate import generate_eval
    from alignlab.judges.rubric import make_eval_judge
    from alignlab.models import load_model

    if bool(behaviour) == bool(behaviour_file):
        fail("give the behaviour with exactly one of --behaviour TEXT or --behaviour-file FILE")
    try:
        text = behaviour or Path(str(behaviour_file)).read_text(encoding="utf-8").strip()
    except OSError as e:
        fail(f"{behaviour_file}: cannot read ({e.strerror})")
    with user_errors(RuntimeError, FileNotFoundError, ValueError):
        hm = load_model(helper, batch_size=batch_size)
        tm = load_model(target, batch_size=batch_size) if target else None
        jd = make_eval_judge(judge, batch_size=batch_size) if target else None
    with progress("generate") as on_progress, user_errors(ValueError):
        res = generate_eval(hm, text, out_dir, n=n, kind=kind, seed=seed, variations=variations,
                            target=tm, judge=jd, on_progress=on_progress, name=name)
    counts = res.get("counts", {})
    out.print("stages: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    acc = res.get("acceptance") or {}
    if acc:
        out.print(f"accepted {acc.get('k')}/{acc.get('n')} ({pct(acc.get('rate'))} {ci(acc.get('ci'))})")
    for stage, reasons in (res.get("rejections") or {}).items():
        for reason, c in (reasons or {}).items():
            out.print(f"  rejected at {stage}: {reason} x{c}", highlight=False)
    out.print(f"-> {out_dir}/generated.jsonl (never mixed into the packaged suites; run it with "
              f"'alignlab eval --items {out_dir}/generated.jsonl')")
