"""The packaged data's fixed splits: the behavior pool / held-out halves and the borderline halves.

Both splits depend only on the ids (hashes), so they are the same in every process. The pool half
of the behaviors is what a guard may learn from; the held-out half is what guard eval measures on.
The borderline set's calibration half may set a guard's thresholds (or train it as hard negatives);
its evaluation half measures over-refusal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources

from alignlab.data.behaviors import Behavior


def behavior_split(behaviors: Sequence[Behavior]) -> tuple[list[Behavior], list[Behavior]]:
    """Split behaviors into (guard-train pool, guard-eval) halves, stratified by category.

    Within each category behaviors are ordered by a hash of their id; the first half is the pool
    a guard may learn from (via red-team hits), the second half is held out for evaluation.
    The split depends only on the ids, so it is the same in every process.
    """
    by_cat: dict[str, list[Behavior]] = {}
    for b in behaviors:
        by_cat.setdefault(b.category, []).append(b)
    pool, held = [], []
    for cat in sorted(by_cat):
        items = sorted(by_cat[cat], key=lambda b: hashlib.sha256(f"guard-split|{b.id}".encode()).hexdigest())
        k = len(items) // 2
        pool += items[:k]
        held += items[k:]
    return pool, held


def borderline_split(rows: Sequence[tuple[str, str, str]]) -> tuple[list, list]:
    """(calibration half, evaluation half) of (id, category, prompt) rows: within each category,
    rows ordered by a hash of their id alternate between the halves (stable, stratified)."""
    by_cat: dict[str, list] = {}
    for r in rows:
        by_cat.setdefault(r[1], []).append(r)
    cal_ids: set[str] = set()
    for cat_rows in by_cat.values():
        ordered = sorted(cat_rows, key=lambda r: hashlib.sha256(f"borderline|{r[0]}".encode()).hexdigest())
        cal_ids.update(r[0] for r in ordered[0::2])
    return [r for r in rows if r[0] in cal_ids], [r for r in rows if r[0] not in cal_ids]


def load_borderline(half: str | None = None) -> list[tuple[str, str, str]]:
    """The packaged borderline set: (id, category, prompt) of harmless prompts that sound alarming.

    ``half``: None for all 90; ``"calibration"`` or ``"evaluation"`` for one of its two fixed,
    category-stratified halves (``guard calibrate`` uses the first, ``guard eval`` the second).
    """
    text = resources.files("alignlab.data").joinpath("files/borderline.jsonl").read_text("utf-8")
    rows = [(d["id"], d["category"], d["prompt"]) for d in map(json.loads, filter(str.strip, text.splitlines()))]
    if half is None:
        return rows
    if half not in ("calibration", "evaluation"):
        raise ValueError(f"borderline half must be 'calibration' or 'evaluation', not {half!r}")
    return borderline_split(rows)[0 if half == "calibration" else 1]
