"""What a guard saw before it is measured, and the check that evaluation prompts share none of it.

A guard directory records its training data (``data.jsonl``) and the prompts it was calibrated on
(``config.json``); ``guard calibrate`` and ``guard eval`` both refuse prompts that overlap them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alignlab.data.behaviors import Behavior
from alignlab.guard.data import assert_disjoint, eval_texts_of, read_jsonl
from alignlab.guard.guard import Guard


def calibration_prompts(guard: Guard) -> list[str]:
    """Prompts the guard was calibrated on (empty when it never was)."""
    return list((guard.config.get("calibration") or {}).get("prompts", []))


def training_requests(guard: Guard) -> list[str] | None:
    """The user messages of the guard's training data (its ``data.jsonl``), without the
    template-wrapped copies; None when the directory has no data file."""
    data = Path(guard.path) / "data.jsonl" if guard.path else None
    if not data or not data.exists():
        return None
    return [m["content"] for e in read_jsonl(data) for m in e.conversation
            if m["role"] == "user" and not e.source.startswith("augment:")]


def check_no_leakage(guard: Guard, behaviors: Sequence[Behavior], borderline: Sequence[str]) -> str:
    """Fail if the guard's training or calibration data shares text with the evaluation prompts."""
    evaluation = [*eval_texts_of(behaviors), *borderline]
    cal = calibration_prompts(guard)
    if cal:
        assert_disjoint(cal, evaluation, "evaluation (the guard was calibrated on it)")
    plain = training_requests(guard)
    if plain is None:
        return "not checked: the guard directory has no data.jsonl"
    assert_disjoint(plain, evaluation, "evaluation")
    return f"checked: {len(plain)} training requests and {len(cal)} calibration prompts share no text " \
           f"with {len(behaviors)} behaviors and {len(borderline)} borderline prompts"
