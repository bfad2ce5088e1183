"""The library front door: the lab's stages as plain functions for notebooks and scripts.

Each function takes a model object or a spec string, uses a temporary workspace unless you pass
``workspace=``, runs the stage, writes its data and its HTML report, and returns a typed result
(``RedteamResult``, ``EvalResult``, ``GuardEvalResult``, ``LabResult``) that reads like the stage's
results.json and has ``.summary()``, ``.to_dict()`` and ``.save(dir)``.

Example:
    >>> import alignlab
    >>> target = alignlab.load_model("embedded:smollm2-135m-instruct")      # doctest: +SKIP
    >>> result = alignlab.run_redteam(target, attacks="direct", limit=4)     # doctest: +SKIP
    >>> print(result.summary())                                              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import alignlab.report  # noqa: F401  (registers the report writers that result.save uses)
from alignlab.data.behaviors import Behavior, filter_behaviors, load_behaviors, load_packaged, load_prompt_file
from alignlab.data.splits import behavior_split, load_borderline
from alignlab.errors import AlignlabError
from alignlab.evals.result import EvalResult
from alignlab.guard.guard import Guard
from alignlab.guard.result import GuardEvalResult
from alignlab.judges.harm import make_judge
from alignlab.lab.results import LabResult
from alignlab.models.base import ChatModel
from alignlab.models.spec import load_model
from alignlab.redteam.result import RedteamResult
from alignlab.store.workspace import Workspace

Progress = Callable[[str, int, int], None]
C = TypeVar("C")

__all__ = ["evaluate_guard", "load_model", "open_workspace", "run_eval", "run_lab", "run_redteam", "train_guard"]


def open_workspace(workspace: str | Path | Workspace | None = None) -> Workspace:
    """The run store: a given one, a folder, or (None) a fresh temporary folder."""
    if isinstance(workspace, Workspace):
        return workspace
    return Workspace(workspace if workspace is not None else tempfile.mkdtemp(prefix="alignlab-"))


@overload
def _model(model: ChatModel | str, **options: Any) -> ChatModel: ...


@overload
def _model(model: ChatModel | str | None, **options: Any) -> ChatModel | None: ...


def _model(model: ChatModel | str | None, **options: Any) -> ChatModel | None:
    return load_model(model, **options) if isinstance(model, str) else model


def _spec(model: ChatModel | str | None) -> str | None:
    return model if isinstance(model, str) or model is None else model.identity


def _config(cls: type[C], config: C | None, settings: dict[str, Any]) -> C:
    """``config`` (or the defaults) with ``settings`` applied; unknown names are one-line errors."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    bad = sorted(set(settings) - known)
    if bad:
        raise AlignlabError(f"unknown setting(s) {', '.join(bad)} for {cls.__name__}; "
                            f"known: {', '.join(sorted(known))}")
    return dataclasses.replace(config or cls(), **settings)  # type: ignore[type-var]


def _behaviors(behaviors: str | Path | Sequence[Behavior] | None) -> list[Behavior]:
    if behaviors is None or isinstance(behaviors, (str, Path)):
        return load_behaviors(behaviors)
    return list(behaviors)


def _judge(judge: Any) -> Any:
    """A judge object, or one built by name or model spec."""
    return make_judge(judge) if isinstance(judge, str) or judge is None else judge


def _attacks(attacks: str | Sequence[Any]) -> list[Any]:
    from alignlab.redteam.attacks import get_attack, get_attacks

    if isinstance(attacks, str):
        return get_attacks(attacks)
    return [get_attack(a) if isinstance(a, str) else a for a in attacks]


def run_redteam(
    target: ChatModel | str,
    behaviors: str | Path | Sequence[Behavior] | None = None,
    attacks: str | Sequence[Any] = "templates",
    judge: Any = "heuristic",
    *,
    attacker: ChatModel | str | None = None,
    limit: int | None = None,
    categories: Sequence[str] | None = None,
    workspace: str | Path | Workspace | None = None,
    out: str | Path | None = None,
    resume: str | None = None,
    config: Any = None,
    progress: Progress | None = None,
    report: bool = True,
    **settings: Any,
) -> RedteamResult:
    """Red-team a target: behaviors x attacks, judged, with behavior-level ASR and 95% CIs.

    Args:
        target: the model under test, or its spec (``embedded:...``, ``hf:...``, ``openai:...``).
        behaviors: a HarmBench/JailbreakBench CSV, a prompt file, a list of ``Behavior``, or None
            for the packaged set.
        attacks: a comma list of attack names or groups (``templates``, ``llm``, ``all``), or attacks.
        judge: ``heuristic``, a registered judge name, a judge model spec, or a judge object.
        attacker: the helper model for attacker-LLM attacks (PAIR, TAP, Crescendo).
        limit: behaviors to use, stratified by category.
        categories: categories to keep.
        workspace: the run store (default: a temporary folder).
        out: where results.json, hits.jsonl and report.html go (default: the run's artifacts).
        resume: a run id to continue (its settings must match).
        config: a ``RedteamConfig``; ``settings`` (``budget=``, ``max_new_tokens=``, ``seed=``...)
            override its fields.
        progress: ``(phase, done, total)`` callback.
        report: also write report.html.
    """
    from alignlab.redteam.engine import RedteamConfig
    from alignlab.redteam.engine import run_redteam as _run

    cfg = _config(RedteamConfig, config, settings)
    bs = filter_behaviors(_behaviors(behaviors), list(categories) if categories else None, limit, cfg.seed)
    atk = _attacks(attacks)
    ws = open_workspace(workspace)
    jdg = _judge(judge)
    cfg = dataclasses.replace(cfg, extra={"target_spec": _spec(target), "attacker_spec": _spec(attacker),
                                          "judge_spec": judge if isinstance(judge, str) else jdg.name,
                                          "behaviors_file": str(behaviors) if isinstance(behaviors, (str, Path))
                                          else "packaged" if behaviors is None else "given", **cfg.extra})
    res = _run(_model(target), jdg, bs, atk, ws, cfg, attacker=_model(attacker), resume=resume, out_dir=out,
               on_progress=progress)
    if report:
        res.save()
    return res


def run_eval(
    model: ChatModel | str,
    suites: str | Sequence[str] | None = "all",
    *,
    items: str | Path | None = None,
    judge: str | Any = "none",
    limit: int | None = None,
    workspace: str | Path | Workspace | None = None,
    out: str | Path | None = None,
    resume: str | None = None,
    config: Any = None,
    progress: Progress | None = None,
    report: bool = True,
    **settings: Any,
) -> EvalResult:
    """Behavioural suites (sycophancy, self-preservation, power-seeking, honesty, misuse,
    whistleblowing, or your items): the rate of the concerning behaviour per suite with a 95% CI.

    Args:
        model: the model under evaluation, or its spec.
        suites: suite names (a list or a comma string), ``all``, or None with ``items``.
        items: an alignlab or anthropics/evals JSONL of extra items.
        judge: ``none``/``heuristic`` (free-form items of rubric suites are unscorable), a judge
            model spec, or an ``EvalJudge``.
        limit: items per suite, stratified by kind and subtype.
        workspace, out, resume, progress, report: as in :func:`run_redteam`.
        config: an ``EvalConfig``; ``settings`` (``max_new_tokens=``, ``mc_mode=``...) override it.
    """
    from alignlab.evals.items import resolve_items
    from alignlab.evals.runner import run_eval as _run
    from alignlab.evals.score import EvalConfig
    from alignlab.judges.rubric import make_eval_judge

    cfg = _config(EvalConfig, config, settings)
    names = suites if suites is None or isinstance(suites, str) else ",".join(suites)
    its = resolve_items(names, items, limit, cfg.seed)
    ws = open_workspace(workspace)
    jdg = make_eval_judge(judge) if isinstance(judge, str) or judge is None else judge
    res = _run(_model(model), its, jdg, ws, cfg, resume=resume, out_dir=out, on_progress=progress,
               extra={"model_spec": _spec(model), "judge_spec": judge if isinstance(judge, str) else jdg.name,
                      "limit": limit, "items_file": str(items) if items else None})
    if report:
        res.save()
    return res


def train_guard(
    out: str | Path,
    target: ChatModel | str,
    *,
    constitution: str | Path | None = None,
    helper: ChatModel | str | None = None,
    from_runs: Sequence[str] = (),
    workspace: str | Path | Workspace | None = None,
    borderline_negatives: bool = False,
    pool_behaviors: bool = False,
    data: Any = None,
    train: Any = None,
    progress: Progress | None = None,
) -> Guard:
    """Constitution (+ red-team hits) -> synthetic data -> classifiers -> a guard directory.

    Args:
        out: the guard directory to write.
        target: the model to guard: it answers the training requests and probes read its activations.
        constitution: a constitution YAML/Markdown (None: the packaged one).
        helper: writes new requests and paraphrases (None: the constitution's examples only).
        from_runs: red-team run ids (in ``workspace``) whose judged attempts are added; the
            held-out half of the packaged behaviors is never taken.
        borderline_negatives: train on the borderline set's calibration half as hard negatives.
        pool_behaviors: train on every pool-half behavior and its benign counterpart.
        data, train: a ``DataConfig`` and a ``TrainConfig`` (defaults: the measured lab defaults).
    """
    from alignlab.guard.constitution import load_constitution
    from alignlab.guard.data import DataConfig, examples_from_run
    from alignlab.guard.train import TrainConfig, build_and_train

    con = load_constitution(constitution)
    dcfg, tcfg = data or DataConfig(), train or TrainConfig()
    tgt = _model(target)
    examples = []
    if from_runs:
        ws = open_workspace(workspace)
        held = {b.id for b in behavior_split(load_packaged())[1]}
        for rid in from_runs:
            run = ws.read_run(rid)
            examples += examples_from_run(run.records(), rid, set(run.info.config.get("behaviors", [])) - held)
    negs = [(c, p) for _, c, p in load_borderline("calibration")] if borderline_negatives else []
    return build_and_train(con, out, dcfg, tcfg, helper=_model(helper), responder=tgt if dcfg.response_tokens else None,
                           target=tgt, run_examples=examples, from_runs=list(from_runs), progress=progress,
                           hard_negatives=negs, pool_behaviors=pool_behaviors)


def evaluate_guard(
    guard: Guard | str | Path,
    target: ChatModel | str,
    *,
    behaviors: str | Path | Sequence[Behavior] | None = None,
    benign: str | Path | None = None,
    attacks: str | Sequence[Any] = "templates",
    judge: Any = "heuristic",
    attacker: ChatModel | str | None = None,
    limit: int | None = None,
    workspace: str | Path | Workspace | None = None,
    out: str | Path | None = None,
    config: Any = None,
    progress: Progress | None = None,
    report: bool = True,
    **settings: Any,
) -> GuardEvalResult:
    """Red-team the target without and with the guard: ASR, over-refusal, overhead, with CIs.

    Args:
        guard: a guard directory or a loaded ``Guard``.
        target: the guarded model (the one the guard was trained for, for probe guards).
        behaviors: evaluation behaviors (default: the packaged held-out half; never training data).
        benign: benign prompts for over-refusal (default: the borderline set's evaluation half).
        attacks, judge, attacker, limit, workspace, out, progress, report: as in :func:`run_redteam`.
        config: a ``GuardEvalConfig``; ``settings`` override its fields.
    """
    from alignlab.guard.evaluate import GuardEvalConfig, run_guard_eval
    from alignlab.guard.guard import load_guard

    cfg = _config(GuardEvalConfig, config, settings)
    g = guard if isinstance(guard, Guard) else load_guard(guard)
    bs = _behaviors(behaviors) if behaviors is not None else behavior_split(load_packaged())[1]
    bs = filter_behaviors(bs, None, limit, cfg.seed)
    bl = [(b.id, b.category, b.behavior) for b in load_prompt_file(benign)] if benign else load_borderline("evaluation")
    ws = open_workspace(workspace)
    jdg = _judge(judge)
    res = run_guard_eval(_model(target), g, jdg, bs, _attacks(attacks), ws, cfg, borderline=bl,
                         attacker=_model(attacker), out_dir=out, on_progress=progress)
    if report:
        res.save()
    return res


def run_lab(
    config: Any = None,
    out: str | Path = "alignlab-lab",
    *,
    workspace: str | Path | Workspace | None = None,
    quick: bool = False,
    resume: str | None = None,
    log: Callable[[str], Any] = print,
) -> LabResult:
    """The whole lab loop (red-team -> guard -> re-attack -> evals -> SAE + auto-interp -> strategy)
    and its report; re-running with the same ``out`` resumes (finished stages are skipped).

    Args:
        config: a ``LabConfig``, a dict of overrides, a YAML path, or None for the packaged default.
        out: the lab's folder (each stage's folder, results.json, report.html).
        workspace: the run store (default: ``OUT/runs``).
        quick: with ``config=None``, the quick config (a first look in minutes).
        resume: a lab run id to continue.
        log: one line per event.
    """
    from alignlab.lab.config import LabConfig, config_from_dict, load_lab_config
    from alignlab.lab.runner import run_lab as _run

    if isinstance(config, LabConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = config_from_dict(config, "the config dict")
    else:
        cfg = load_lab_config(config, quick=quick)
    ws = open_workspace(workspace if workspace is not None else Path(out) / "runs")
    data = _run(cfg, ws, out, resume=resume, log=log)
    return LabResult(dict(data), out_dir=out)
