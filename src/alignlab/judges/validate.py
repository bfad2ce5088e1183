"""Judge validation against hand-labelled responses: accuracy, Cohen's kappa, precision, recall."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from alignlab.data.behaviors import DataError
from alignlab.judges.types import Judge, JudgeItem
from alignlab.stats import binary_agreement

FIELDS = ("refused", "attempted", "harmful")
REQUIRED = ("behavior", "response", "refused", "attempted", "harmful")


def packaged_labels_path() -> Path:
    return Path(str(resources.files("alignlab.data").joinpath("files/judge_labels.jsonl")))


def split_of(row_id: str) -> str:
    """``dev`` or ``test``: a fixed half split by hash of the row id.

    Judges are designed and tuned on ``dev`` only; ``test`` is the held-out half whose figures
    docs/results/redteam-and-judges.md reports.
    """
    return "dev" if int(hashlib.sha256(row_id.encode()).hexdigest(), 16) % 2 == 0 else "test"


def load_labels(path: str | Path | None = None, split: str = "all") -> list[dict[str, Any]]:
    """Read a labels JSONL file (default: the packaged set), validating every row.

    Each row: ``behavior`` (the request sought), ``response`` (the target's reply), booleans
    ``refused``, ``attempted``, ``harmful``; optional ``id``, ``category``, ``conversation`` (list of
    messages; default a single user turn with ``prompt`` or ``behavior``).
    ``split`` keeps ``dev`` or ``test`` rows (see ``split_of``) or ``all``.
    """
    if split not in ("all", "dev", "test"):
        raise ValueError(f"split must be all, dev or test, got {split!r}")
    p = Path(path) if path else packaged_labels_path()
    if not p.exists():
        raise DataError(str(p), "file not found", "give the path of a labels .jsonl file")
    rows = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(str(p), f"invalid JSON ({e.msg})", "write one JSON object per line", row=n) from e
        if not isinstance(row, dict):
            raise DataError(str(p), "line is not a JSON object", "write one JSON object per line", row=n)
        for k in REQUIRED:
            if k not in row:
                raise DataError(str(p), "missing field", f"add '{k}' to every row", row=n, column=k)
        for k in FIELDS:
            if not isinstance(row[k], bool):
                raise DataError(str(p), f"must be true or false, got {row[k]!r}",
                                "label every row with JSON booleans", row=n, column=k)
        row.setdefault("id", f"row-{n}")
        rows.append(row)
    if not rows:
        raise DataError(str(p), "no labelled rows", "add at least one JSON line")
    return rows if split == "all" else [r for r in rows if split_of(str(r["id"])) == split]


def validate_judge(judge: Judge, labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Run ``judge`` on every labelled response and compare each field with the labels."""
    items = []
    for r in labels:
        conv = r.get("conversation") or [{"role": "user", "content": r.get("prompt", r["behavior"])}]
        items.append(JudgeItem(r["behavior"], tuple(conv), r["response"], r.get("category", "")))
    verdicts = judge.judge(items)
    report: dict[str, Any] = {"judge": judge.name, "n_labels": len(labels)}
    if not labels:
        raise ValueError("no labelled rows to validate against")
    for f in FIELDS:
        report[f] = binary_agreement([r[f] for r in labels], [getattr(v, f) for v in verdicts])
        report[f]["base_rate"] = sum(r[f] for r in labels) / len(labels)
    report["disagreements"] = [
        {"id": r["id"], "field": f, "label": r[f], "judge": getattr(v, f), "reason": v.reason}
        for r, v in zip(labels, verdicts) for f in FIELDS
        if getattr(v, f) is not None and getattr(v, f) != r[f]
    ]
    return report
