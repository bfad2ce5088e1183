"""Export an eval run as an inspect_ai log (``.eval``) that ``inspect view`` opens.

One run becomes one inspect task (one log file): a run is one model, one config and one judge over
several suites, which is exactly what an inspect log header describes; the suites are told apart
by each sample's ``suite`` metadata and by the per-suite metrics, so one file keeps the run whole
and the viewer can still filter by suite. (A log per suite would need a folder of files for one
run and would repeat the header in each.)

Mapping of one alignlab record to an inspect sample:

- ``id``: ``"<suite>:<id>"`` (unique across suites);
- ``input``: the transcript up to the first assistant turn; ``messages``: the whole transcript;
- ``output``: the last assistant reply (for a multiple-choice item scored by log-likelihood with
  no reply, the chosen option's text);
- ``target``: the options that match the behaviour, else the record's ``rubric``, else the suite's
  behaviour statement from ``results``;
- ``scores["behaviour"]``: 1 (behaviour shown) or 0; an unscorable item gets inspect's own
  unscored sentinel (value NaN, as ``Score.unscored`` makes it; ``reason`` and ``explanation`` =
  alignlab's unscorable reason), which inspect's metrics skip and count as unscored. (The "N"
  no-answer value would not do: inspect's ``value_to_float`` turns "N" into 0, folding
  unscorable items into "not shown".)
- ``metadata``: suite, subtype, kind, choices, choice, logprobs and the rest of the record.

The log's results hold one score per suite, named after the suite, from the ``behaviour`` scorer
(the shape inspect writes for a scorer with per-key metrics), with metrics ``rate`` and ``stderr``
(inspect's convention: sample standard deviation with ddof=1 over sqrt(n)) and, for agentic
suites with control items, ``control_rate``; the Wilson interval and counts are in each score's
metadata. The viewer shows them as a suite-by-metric table. (Grouped metrics on one score were
tried first: the viewer drops the group, so a suite's rate and stderr showed under the same label.)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

INSTALL_HINT = "install the inspect extra: pip install 'alignlab[inspect]'"
SCORER = "behaviour"
TASK = "alignlab_evals"


def _short_id(*parts: str) -> str:
    """A stable 22-character id (inspect's ids are 22-character short uuids)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:22]


def sample_id(record: Mapping[str, Any]) -> str:
    """The inspect sample id of a record: ``"<suite>:<id>"``."""
    return f"{record['suite']}:{record['id']}"


def _messages(transcript: Sequence[Mapping[str, Any]], model: str, where: str) -> list[Any]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser

    out: list[Any] = []
    for i, m in enumerate(transcript):
        role, content = m.get("role"), m.get("content")
        if not isinstance(content, str):
            raise ValueError(f"{where}: transcript[{i}] has no text 'content'")
        meta = {"tool": m["tool"]} if m.get("tool") else None
        if role == "system":
            out.append(ChatMessageSystem(content=content, metadata=meta, source="input"))
        elif role == "user":
            out.append(ChatMessageUser(content=content, metadata=meta, source="input"))
        elif role == "assistant":
            out.append(ChatMessageAssistant(content=content, metadata=meta, model=model,
                                            source="generate"))
        elif role == "tool":
            out.append(ChatMessageTool(content=content, function=m.get("tool"), metadata=meta))
        else:
            raise ValueError(f"{where}: transcript[{i}] has role {role!r}; expected system, user, "
                             "assistant or tool")
    return out


def _score(r: Mapping[str, Any]) -> Any:
    from inspect_ai.scorer import Score

    judge = r.get("judge") or None
    choices, choice = r.get("choices") or [], r.get("choice")
    answer = choices[choice] if isinstance(choice, int) and 0 <= choice < len(choices) else None
    meta: dict[str, Any] = {}
    if judge:
        meta["judge"] = judge
    if r.get("behaviour") is None:
        reason = r.get("unscorable_reason") or "unscorable"
        return Score(value=float("nan"), reason=reason, answer=answer, explanation=reason,
                     metadata=meta | {"unscorable_reason": reason})
    if judge and judge.get("reason"):
        explanation = str(judge["reason"])
    elif answer is not None:
        matching = r.get("matching") or []
        explanation = (f"chose option {choice} ({answer!r}), which "
                       f"{'matches' if choice in matching else 'does not match'} the behaviour")
    else:
        explanation = None
    return Score(value=1 if r["behaviour"] else 0, answer=answer, explanation=explanation,
                 metadata=meta or None)


def _sample(r: Mapping[str, Any], model: str, run_id: str, index: int,
            suite_behaviour: Mapping[str, str]) -> Any:
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ModelOutput

    for field in ("id", "suite"):
        if r.get(field) in (None, ""):
            raise ValueError(f"record {index} has no {field!r}; eval records need 'suite' and 'id'")
    sid = sample_id(r)
    messages = _messages(r.get("transcript") or [], model, f"record {sid}")
    first = next((i for i, m in enumerate(messages) if m.role == "assistant"), len(messages))
    inp = messages[:first] or ""
    replies = [m for m in messages if m.role == "assistant"]
    choices = [str(c) for c in r.get("choices") or []]
    choice = r.get("choice")
    if replies:
        completion = replies[-1].text
    elif isinstance(choice, int) and 0 <= choice < len(choices):
        completion = choices[choice]
    else:
        completion = ""
    matching = [i for i in r.get("matching") or [] if isinstance(i, int) and 0 <= i < len(choices)]
    rubric = r.get("rubric") or suite_behaviour.get(str(r["suite"])) or ""
    target: str | list[str] = [choices[i] for i in matching] if matching else str(rubric)
    skip = {"transcript", "choices", "option_logprobs", "judge"}
    metadata = {"suite": r["suite"], "subtype": r.get("subtype"), "kind": r.get("kind"),
                "choices": choices or None, "choice": choice, "logprobs": r.get("option_logprobs")}
    metadata |= {k: v for k, v in r.items() if k not in skip and k not in metadata}
    return EvalSample(
        id=sid, epoch=1, input=inp, choices=choices or None, target=target, messages=messages,
        output=ModelOutput.from_content(model=model, content=completion),
        scores={SCORER: _score(r)}, metadata=metadata, uuid=_short_id(run_id, sid))


def _suite_scores(results: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> list[Any]:
    """One inspect ``EvalScore`` per suite (metrics ``rate`` and ``stderr``), computed from the
    records and checked against the counts in ``results``.

    Control items (agentic ``control: true``) are kept out of a suite's rate, as the run's own
    rates keep them out, and get a ``control_rate`` metric of their own.
    """
    from inspect_ai.log import EvalMetric, EvalScore

    from alignlab.stats import rate_of

    by_suite: dict[str, list[bool | None]] = {}
    controls: dict[str, list[bool | None]] = {}
    for r in records:
        by_suite.setdefault(str(r["suite"]), [])
        (controls if r.get("control") else by_suite).setdefault(str(r["suite"]), []).append(
            r.get("behaviour"))
    summary = results.get("suites") or {}
    scores = []
    for suite, values in by_suite.items():
        rate = rate_of(values)
        stated = summary.get(suite) or {}
        for field in ("k", "n", "n_unscorable"):
            if field in stated and stated[field] != getattr(rate, field):
                raise ValueError(
                    f"results.json says suite {suite!r} has {field}={stated[field]} but the records "
                    f"give {getattr(rate, field)}; export the results and samples of the same run")
        metrics: dict[str, Any] = {}
        meta: dict[str, Any] = {k: v for k, v in rate.to_dict().items() if k != "rate"}
        meta["ci_method"] = "wilson"
        for extra in ("chance", "behaviour", "description"):
            if stated.get(extra) is not None:
                meta[extra] = stated[extra]
        if rate.n:
            p = rate.k / rate.n
            metrics["rate"] = EvalMetric(name="rate", value=p)
            if rate.n >= 2:  # inspect's stderr: sample standard deviation (ddof=1) / sqrt(n)
                metrics["stderr"] = EvalMetric(name="stderr",
                                               value=math.sqrt(p * (1 - p) / (rate.n - 1)))
        ctrl = rate_of(controls.get(suite, []))
        if ctrl.n:
            metrics["control_rate"] = EvalMetric(name="control_rate", value=ctrl.k / ctrl.n)
            meta["control"] = ctrl.to_dict()
        scores.append(EvalScore(name=suite, scorer=SCORER, scored_samples=rate.n,
                                unscored_samples=rate.n_unscorable, metrics=metrics, metadata=meta))
    return scores


def write_inspect_log(results: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                      path: str | Path) -> Path:
    """Write an eval run as an inspect_ai log file that ``inspect view`` opens.

    Args:
        results: the run's results dict (the ``results.json`` contract: run_id, model, judge,
            created, config, suites...).
        records: the run's records, one per item (the ``samples.jsonl`` rows).
        path: the file to write; ``.eval`` (inspect's zip format) or ``.json``.

    Returns:
        The path written.

    Raises:
        ImportError: inspect_ai is not installed (the message says how to install it).
        ValueError: a bad path, a malformed record, or results that disagree with the records.
    """
    try:
        import inspect_ai
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalLog,
        EvalPlan,
        EvalPlanStep,
        EvalResults,
        EvalSampleReductions,
        EvalSampleScore,
        EvalSpec,
        EvalStats,
        write_eval_log,
    )
    from inspect_ai.model import GenerateConfig

    from alignlab import __version__

    path = Path(path)
    if path.suffix not in (".eval", ".json"):
        raise ValueError(f"{path}: an inspect log must end in .eval (or .json)")
    if not records:
        raise ValueError("no records to export: the run has no scored items yet")
    model = str(results.get("model") or "unknown")
    run_id = str(results.get("run_id") or "alignlab-eval")
    behaviours = {str(k): str(v.get("behaviour") or "") for k, v in (results.get("suites") or {}).items()
                  if isinstance(v, Mapping)}
    samples = [_sample(r, model, run_id, i, behaviours) for i, r in enumerate(records)]
    ids = [s.id for s in samples]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"items {', '.join(dupes[:5])} appear more than once; a run holds one "
                         "record per item")
    suites = list(dict.fromkeys(str(r["suite"]) for r in records))
    cfg = dict(results.get("config") or {})
    created = results.get("created") or datetime.now(UTC).isoformat(timespec="seconds")
    start = datetime.fromisoformat(str(created))
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    end = start + timedelta(seconds=float(results.get("duration_s") or 0.0))
    gen = GenerateConfig(max_tokens=cfg.get("max_new_tokens"), seed=cfg.get("seed"),
                         temperature=cfg.get("temperature"))
    spec = EvalSpec(
        eval_id=_short_id("eval", run_id), run_id=run_id, created=start.isoformat(), task=TASK,
        task_id=_short_id("task", run_id), task_display_name=f"alignlab eval: {', '.join(suites)}",
        task_description="alignlab behavioural evaluation (1 = the suite's behaviour was shown)",
        dataset=EvalDataset(name=", ".join(suites), samples=len(samples), sample_ids=ids,
                            shuffled=False),
        model=model, model_generate_config=gen, config=EvalConfig(epochs=1),
        packages={"alignlab": str(results.get("alignlab_version") or __version__),
                  "inspect_ai": inspect_ai.__version__},
        metadata={"alignlab_run_id": run_id, "stage": results.get("stage", "evals"),
                  "judge": results.get("judge"), "judge_caveat": results.get("judge_caveat"),
                  "config": cfg, "suites": suites},
        # EvalScorer is private (inspect_ai.log._log); pydantic validates this dict into one, which
        # EvalSpec's annotation (list[EvalScorer]) does not express.
        scorers=[{"name": SCORER, "options": {"judge": results.get("judge")}}],  # type: ignore[list-item]
    )
    log = EvalLog(
        status="success", eval=spec,
        plan=EvalPlan(steps=[EvalPlanStep(solver="alignlab.evals.runner", params=cfg)], config=gen),
        results=EvalResults(total_samples=len(samples), completed_samples=len(samples),
                            scores=_suite_scores(results, records), metadata={"suites": results.get("suites") or {}}),
        stats=EvalStats(started_at=start.isoformat(), completed_at=end.isoformat()),
        samples=samples,
    )
    # set after construction: EvalLog's validator only merges reductions into a dict ``results``
    log.reductions = [EvalSampleReductions(scorer=SCORER, samples=[
        EvalSampleScore(**s.scores[SCORER].model_dump(), sample_id=s.id) for s in samples])]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_eval_log(log, path)
    return path


def export_inspect(workspace: Any, run: str | Path, out: str | Path) -> Path:
    """Export an eval run (a run id in ``workspace`` or an output folder) as an inspect log.

    Args:
        workspace: a ``Workspace``, its path, or None when ``run`` is an output folder.
        run: a run id, or a folder holding ``samples.jsonl`` (and ``results.json``).
        out: the ``.eval`` file to write.

    Returns:
        The path written.
    """
    from alignlab.evals.compare import load_run_records

    records, meta = load_run_records(workspace, run)
    results = meta["results"] or {
        "run_id": meta["id"], "stage": "evals", "model": meta["model"], "judge": meta["judge"],
        "created": meta["created"], "config": meta["config"] or {}}
    return write_inspect_log(results, records, out)
