"""Judge validation: agreement with hand labels of real transcripts of the embedded targets.

The packaged set ``files/judge_labels.jsonl`` holds transcripts produced by ``alignlab eval`` on the
embedded models, each labelled by hand: does the assistant show the suite's concerning behaviour?
Rows: ``{"id", "suite", "item_id", "kind", "model", "rubric", "transcript", "label", "note"}`` plus
``"detect"`` for agentic rows and ``"category"`` for misuse rows. Every scorer that decides a
suite is measured against them: the rubric judge, the harm judge (misuse), and the tool-call
detector (agentic).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alignlab.evals.items import FILES, ItemError, item_from_dict
from alignlab.judges.rubric import AGREEMENT_FILE
from alignlab.stats import binary_agreement


def packaged_labels_path() -> Path:
    return FILES / "judge_labels.jsonl"


def load_judge_labels(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Label rows; one error line names the file, row and field."""
    path = Path(path) if path else packaged_labels_path()
    if not path.exists():
        raise ItemError(f"{path}: no such file; give a JSONL of hand-labelled transcripts")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise ItemError(f"{path}, row {n}: not valid JSON ({e.msg})") from None
        for k in ("suite", "transcript"):
            if k not in d:
                raise ItemError(f"{path}, row {n}: field {k!r} is missing")
        if not isinstance(d.get("label"), bool):
            raise ItemError(f"{path}, row {n}: field 'label' must be true or false")
        if not isinstance(d["transcript"], list) or not d["transcript"]:
            raise ItemError(f"{path}, row {n}: field 'transcript' must be a non-empty list of messages")
        rows.append(d)
    if not rows:
        raise ItemError(f"{path}: no label rows")
    return rows


def _packaged_detect(suite: str, item_id: str) -> dict | None:
    from alignlab.evals.items import load_suite

    try:
        return next((it.detect for it in load_suite(suite) if it.id == item_id), None)
    except ItemError:
        return None


def _detector_verdicts(rows: Sequence[dict]) -> list[bool]:
    """The current rule (the packaged item's ``detect`` when it exists) on each labelled transcript."""
    from alignlab.evals.score import detected, parse_calls

    out = []
    for r in rows:
        det = _packaged_detect(r["suite"], r.get("item_id", "")) or r["detect"]
        tools = [{"name": det["tool"], "description": "", "result": ""}]
        item = item_from_dict({"id": r.get("item_id", "x"), "suite": r["suite"], "kind": "agentic",
                               "system": "s", "turns": ["t"], "rubric": "r", "tools": tools,
                               "detect": det}, "label row")
        calls = [c for m in r["transcript"] if m["role"] == "assistant"
                 for c in parse_calls(m["content"], [det["tool"]])]
        out.append(detected(item, calls))
    return out


def _agreement(labels: list[bool], preds: Sequence[bool | None]) -> dict[str, Any]:
    rep = binary_agreement(labels, preds)
    rep["base_rate"] = sum(labels) / len(labels) if labels else None
    return rep


def validate_eval_judge(judge, rows: Sequence[dict], on_progress=None) -> dict[str, Any]:
    """Per suite, the agreement of each scorer with the hand labels (``on_progress(phase, done, total)``)."""
    from alignlab.judges.types import JudgeItem

    suites: dict[str, dict[str, Any]] = {}
    done = 0
    for suite in sorted({r["suite"] for r in rows}):
        rs = [r for r in rows if r["suite"] == suite]
        labels = [r["label"] for r in rs]
        per: dict[str, Any] = {}
        if suite == "misuse":
            jis = [JudgeItem(next(m["content"] for m in r["transcript"] if m["role"] == "user"),
                             tuple(r["transcript"][:-1]), r["transcript"][-1]["content"], r.get("category", ""))
                   for r in rs]
            per[f"harm judge ({judge.harm.name})"] = _agreement(labels, [v.harmful for v in judge.harm.judge(jis)])
        else:
            if judge.rubric is not None:
                res = judge.rubric.judge([(suite, r.get("rubric", ""), r["transcript"]) for r in rs])
                per["rubric judge"] = _agreement(labels, [j.verdict for j in res])
            agentic = [r for r in rs if r.get("detect")]
            if agentic:
                per["tool-call detector"] = _agreement([r["label"] for r in agentic], _detector_verdicts(agentic))
        suites[suite] = per
        done += len(rs)
        if on_progress:
            on_progress("labelled transcripts", done, len(rows))
    return {"judge": judge.name, "n_labels": len(rows), "suites": suites}


def record_agreement(report: dict[str, Any], path: str | Path | None = None, measured: str | None = None) -> Path:
    """Store a validation report's per-suite figures for its judge (read by run caveats)."""
    import datetime

    path = Path(path) if path else AGREEMENT_FILE
    data = json.loads(path.read_text()) if path.exists() else {}
    suites = {}
    for suite, per in report["suites"].items():
        r = next((v for k, v in per.items() if k != "tool-call detector"), None)
        if r is None:
            continue
        suites[suite] = {k: r.get(k) for k in ("n", "n_unscorable", "accuracy", "accuracy_ci", "kappa",
                                               "precision", "recall", "base_rate")}
        suites[suite]["positives"] = (r.get("tp") or 0) + (r.get("fn") or 0)
    data[report["judge"]] = {"measured": measured or datetime.date.today().isoformat(),
                             "labels": report["n_labels"], "suites": suites}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path
