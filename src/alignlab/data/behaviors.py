"""Behavior sets for red-teaming: the packaged set, loading any set by its format, and selection.

``load_packaged`` reads the set that ships with alignlab, ``load_behaviors`` a file in any of the
field's formats (the readers and loaders are in :mod:`alignlab.data.formats`) and
``filter_behaviors`` picks a seeded, category-stratified subset. ``Behavior`` and ``DataError``
(:mod:`alignlab.data.types`) and the format loaders are importable from here too.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from alignlab.data.formats import (
    ACCEPTED_EXTENSIONS,
    HARMBENCH_MARKERS,
    JBB_MARKERS,
    check_unique,
    load_harmbench_csv,
    load_jailbreakbench_csv,
    load_prompt_file,
    parse_jsonl,
    read_csv_rows,
    require_field,
    unknown_extension,
)
from alignlab.data.types import Behavior, DataError

__all__ = [
    "Behavior",
    "DataError",
    "filter_behaviors",
    "load_behaviors",
    "load_harmbench_csv",
    "load_jailbreakbench_csv",
    "load_packaged",
    "load_prompt_file",
]


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------


def load_packaged() -> list[Behavior]:
    """Load the red-team behavior set that ships with alignlab.

    Each item is a harmful request (the request only) with a topic-matched benign counterpart, in
    nine categories: cybercrime, weapons, drugs, fraud_scams, harassment_hate, self_harm, privacy,
    misinformation, violence_extremism.

    Returns:
        The behaviors in file order, with ``source="alignlab"``.
    """
    name = "alignlab.data/files/behaviors.jsonl"
    text = resources.files("alignlab.data").joinpath("files/behaviors.jsonl").read_text(encoding="utf-8")
    items: list[tuple[int, Behavior]] = []
    for row, obj in parse_jsonl(text, name):
        items.append(
            (
                row,
                Behavior(
                    id=require_field(name, row, obj, "id", required=True),
                    behavior=require_field(name, row, obj, "behavior", required=True),
                    category=require_field(name, row, obj, "category", required=True),
                    benign=require_field(name, row, obj, "benign", required=False),
                    context=require_field(name, row, obj, "context", required=False),
                    source="alignlab",
                ),
            )
        )
    return check_unique(name, items, "id")


def load_behaviors(path: str | Path | None = None) -> list[Behavior]:
    """Load a behavior set, detecting its format.

    ``None`` gives the packaged set. A ``.csv`` whose header has a HarmBench column (``BehaviorID``,
    ``SemanticCategory``, ``FunctionalCategory`` or ``ContextString``) is read as HarmBench, one
    with a ``Goal`` column as JailbreakBench, any other CSV, ``.jsonl`` or ``.txt`` as a prompt file.

    Args:
        path: the file, or None for the packaged set.

    Returns:
        The behaviors in file order.

    Raises:
        DataError: the file is missing, has an unknown extension or is malformed.
    """
    if path is None:
        return load_packaged()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ACCEPTED_EXTENSIONS:
        raise unknown_extension(path)
    if suffix == ".csv":
        header, _ = read_csv_rows(path)
        if HARMBENCH_MARKERS & set(header):
            return load_harmbench_csv(path)
        if JBB_MARKERS & set(header):
            return load_jailbreakbench_csv(path)
    return load_prompt_file(path)


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------


def filter_behaviors(
    behaviors: Sequence[Behavior],
    categories: Iterable[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> list[Behavior]:
    """Select behaviors by category, with a limit stratified across categories.

    With a limit, categories are visited round-robin in a seeded shuffled order, each yielding its
    items in a seeded shuffled order, until ``limit`` items are taken; so a limit of at least the
    number of categories covers every category, and per-category counts differ by at most one
    (until a category runs out).

    Args:
        behaviors: the set to select from.
        categories: keep only these categories (None: all). Unknown names raise ValueError.
        limit: the most items to return (None: no limit).
        seed: seed of the shuffles; the same seed gives the same selection.

    Returns:
        The selected behaviors, in their input order.

    Raises:
        ValueError: a requested category is not in the set, or limit is negative.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    pool = list(behaviors)
    if categories is not None:
        wanted = list(dict.fromkeys(categories))
        present = {b.category for b in pool}
        unknown = [c for c in wanted if c not in present]
        if unknown:
            raise ValueError(f"unknown categories {unknown}; the set has: {', '.join(sorted(present))}")
        keep = set(wanted)
        pool = [b for b in pool if b.category in keep]
    if limit is None or limit >= len(pool):
        return pool

    rng = random.Random(seed)
    by_cat: dict[str, list[int]] = {}
    for i, b in enumerate(pool):
        by_cat.setdefault(b.category, []).append(i)
    order = sorted(by_cat)
    rng.shuffle(order)
    queues = []
    for c in order:
        idx = by_cat[c][:]
        rng.shuffle(idx)
        queues.append(idx)
    chosen: list[int] = []
    depth = 0
    while len(chosen) < limit:
        for q in queues:
            if depth < len(q) and len(chosen) < limit:
                chosen.append(q[depth])
        depth += 1
    return [pool[i] for i in sorted(chosen)]
