"""The quality filter of generated evaluations: static checks, the schema, and the helper's self-check.

A written item is rejected with a short reason when it breaks a length bound, marks no option or
every option, has options that say the same thing or copy the prompt's example, gives its answer
away by length (``static_checks``), fails the shipped loader's schema (``quality_checks``), or when the
helper, asked which option shows the behaviour in two option orders, does not pick a concerning
one every time (``selfcheck``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from alignlab.evals.generate_config import Bounds, derive_seed
from alignlab.evals.generate_parse import LETTERS, normalise, parse_choice_letter
from alignlab.evals.generate_prompts import example_options, selfcheck_conv
from alignlab.models.base import ChatModel, GenerationConfig, can_score


def _jaccard_words(a: str, b: str) -> float:
    x, y = set(normalise(a).split()), set(normalise(b).split())
    return len(x & y) / len(x | y) if x and y else float(x == y)


def _copied_option(options: list[str], similarity: float = 0.8) -> int | None:
    """Index of the first option that repeats (or nearly repeats) an option of the format examples."""
    ex = example_options()
    for i, o in enumerate(options):
        if any(normalise(o) == normalise(e) or _jaccard_words(o, e) >= similarity for e in ex):
            return i
    return None


def static_checks(d: dict[str, Any], bounds: Bounds) -> tuple[str, str] | None:
    """The first failed check of an item dict as ``(reason, detail)``, or None when all pass.

    The schema itself (``item_from_dict``) is checked by the caller first.
    """
    lo, hi = bounds.question_chars
    if d["kind"] == "mc":
        q, choices, matching = d["question"], d["choices"], d["matching"]
        if not lo <= len(q) <= hi:
            return ("question_length", f"{len(q)} characters; allowed {lo}-{hi}")
        if not matching:
            return ("label_empty", "no option is marked as showing the behaviour")
        if len(set(matching)) >= len(choices):
            return ("label_all_options", "every option is marked as showing the behaviour")
        olo, ohi = bounds.option_chars
        for i, c in enumerate(choices):
            if not olo <= len(c) <= ohi:
                return ("option_length", f"option {i} has {len(c)} characters; allowed {olo}-{ohi}")
        for i in range(len(choices)):
            for j in range(i + 1, len(choices)):
                if normalise(choices[i]) == normalise(choices[j]) or \
                        _jaccard_words(choices[i], choices[j]) >= bounds.option_similarity:
                    return ("options_not_distinct", f"options {i} and {j} say the same thing")
        bad = _copied_option(choices)
        if bad is not None:
            return ("copies_example_option", f"option {bad} repeats an option of the prompt's example")
        yes = [len(choices[i]) for i in matching]
        no = [len(c) for i, c in enumerate(choices) if i not in matching]
        ratio = (sum(yes) / len(yes)) / (sum(no) / len(no))
        if max(ratio, 1 / ratio) > bounds.length_ratio:
            return ("length_giveaway", f"concerning/other mean length ratio {ratio:.2f}; bound "
                                       f"{bounds.length_ratio}")
        return None
    for i, t in enumerate(d["turns"]):
        if not lo <= len(t) <= hi:
            return ("question_length", f"turn {i} has {len(t)} characters; allowed {lo}-{hi}")
    rlo, rhi = bounds.rubric_chars
    if not rlo <= len(d["rubric"]) <= rhi:
        return ("rubric_length", f"{len(d['rubric'])} characters; allowed {rlo}-{rhi}")
    ex = d.get("provenance", {}).get("examples", {})
    a, b = ex.get("concerning", ""), ex.get("acceptable", "")
    bad = _copied_option([a, b])
    if bad is not None:
        return ("copies_example_option", "an example reply repeats one of the prompt's example")
    if normalise(a) == normalise(b) or _jaccard_words(a, b) >= bounds.option_similarity:
        return ("examples_not_distinct", "the concerning and acceptable example replies say the same")
    return None


def concerning_indices(d: dict[str, Any]) -> list[int]:
    """Indices (in the self-check's option list) of the options that show the behaviour."""
    return list(d["matching"]) if d["kind"] == "mc" else [0]


def resolve_selfcheck(helper: ChatModel, mode: str) -> str:
    """``score`` or ``generate`` for ``auto`` (score when the helper can), else ``mode`` itself."""
    if mode not in ("auto", "score", "generate", "off"):
        raise ValueError(f"selfcheck must be auto, score, generate or off, not {mode!r}")
    if mode != "auto":
        return mode
    return "score" if can_score(helper) else "generate"


def selfcheck(helper: ChatModel, description: str, items: Sequence[dict[str, Any]], mode: str,
              orders: int, seed: int) -> list[dict[str, Any]]:
    """Ask the helper which option shows the behaviour; it must name a concerning one every time.

    Returns per item ``{"mode", "orders", "picks", "agree"}``; ``picks`` are option indices (None
    when a generated answer names no option) and ``agree`` is None when any pick is None.
    """
    if mode == "off" or not items:
        return [{"mode": "off", "agree": True} for _ in items]
    convs, shapes = [], []
    for it in items:
        n_opt = len(it["choices"]) if it["kind"] == "mc" else 2
        first = list(range(n_opt))
        random.Random(derive_seed(seed, "selfcheck", it["id"])).shuffle(first)
        ords = [first, first[::-1]][:max(1, orders)]
        for o in ords:
            convs.append(selfcheck_conv(description, it, o))
        shapes.append(ords)
    if mode == "score":
        conts = [list(LETTERS[:len(o)]) for ords in shapes for o in ords]
        scores = helper.score(convs, conts)
        positions: list[int | None] = [max(range(len(s)), key=lambda k: s[k]) for s in scores]
        raw: list[list[float]] | list[str] = [[round(x, 3) for x in s] for s in scores]
    else:
        outs = helper.generate(convs, GenerationConfig(max_new_tokens=8))
        lens = [len(o) for ords in shapes for o in ords]
        positions = [parse_choice_letter(c.text, k) if c.ok else None for c, k in zip(outs, lens)]
        raw = [c.text[:40] for c in outs]
    res, r = [], 0
    for it, ords in zip(items, shapes):
        picks = [None if (pos := positions[r + j]) is None else o[pos] for j, o in enumerate(ords)]
        want = set(concerning_indices(it))
        agree = None if any(p is None for p in picks) else all(p in want for p in picks)
        res.append({"mode": mode, "orders": ords, "picks": picks, "raw": raw[r:r + len(ords)],
                    "agree": agree})
        r += len(ords)
    return res


def quality_checks(d: dict[str, Any], bounds: Bounds) -> tuple[str, str] | None:
    """The static checks (specific reasons first), then the schema as the shipped loader reads it."""
    from alignlab.evals.items import item_from_dict

    bad = static_checks(d, bounds)
    if bad:
        return bad
    try:
        item_from_dict(d, "generated item", source="generated")
    except ValueError as e:
        return ("schema_invalid", str(e))
    return None
