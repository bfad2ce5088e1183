"""Auto-interp's explaining and scoring: the prompts, parsing the replies, and the tallies.

Steps 3 to 5 of :mod:`alignlab.interp.autointerp`: the explainer reads a latent's shown windows
with activating tokens marked ``<<so>>`` and writes a label (``explain``, ``parse_label``); the
scorer reads the label and one window and answers Yes or No, by comparing the two replies'
log-likelihoods when it can score, else by generating and parsing a reply (``parse_yes_no``).
``score_detection`` / ``score_fuzzing`` tally balanced accuracy (unscorable answers kept apart)
and, with log-likelihoods, an AUROC over the Yes-minus-No margins.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from alignlab.interp.autointerp_types import DEAD, AutoInterpConfig, Context, LatentExamples
from alignlab.models.base import ChatModel, GenerationConfig, Message, can_score, msg

EXPLAINER_SYSTEM = "You are a linguist. You name what marked words have in common, in a few words."
EXPLAINER_TEMPLATE = """Texts with some words marked like <<this>>:

{examples}

Most often marked: {common}

Name what the marked words have in common, in at most 8 words.
Description:"""

SCORER_SYSTEM = "You check texts against a description of a pattern. Answer only Yes or No."
DETECTION_TEMPLATE = """Pattern: {label}

Text: {text}

Does the pattern occur anywhere in this text? Answer Yes or No."""
FUZZING_TEMPLATE = """Pattern: {label}

Text: {text}

Some words in the text are marked like <<this>>. Do the marked words match the pattern? Answer Yes \
or No."""
CANDIDATES = ("Yes", "No")
"""The two replies compared by log-likelihood (first means the feature is present / marks fit)."""
LABEL_MAX_CHARS = 120


# ------------------------------------------------------------------------------------ prompts
def render(tokens: Sequence[str], marks: Sequence[int] = ()) -> str:
    """Join per-token strings into one line, wrapping runs of marked tokens in ``<<`` ``>>``."""
    clean = [t.replace("<<", "< <").replace(">>", "> >").replace("\n", " ").replace("\r", " ")
             for t in tokens]
    marked = set(marks)
    out, i = [], 0
    while i < len(clean):
        if i not in marked:
            out.append(clean[i])
            i += 1
            continue
        j = i
        while j + 1 < len(clean) and j + 1 in marked:
            j += 1
        span = "".join(clean[i:j + 1])
        lead = len(span) - len(span.lstrip())
        out.append(span[:lead] + "<<" + span[lead:].rstrip() + ">>" + span[len(span.rstrip()):]
                   if span.strip() else span)
        i = j + 1
    return re.sub(r" {2,}", " ", "".join(out)).strip()


def explainer_prompt(ex: LatentExamples, cfg: AutoInterpConfig) -> list:
    """The explainer's conversation: the shown windows with activating tokens marked."""
    lines: list[str] = []
    common: Counter[str] = Counter()
    for i, c in enumerate(ex.shown, 1):
        marks = c.marks(cfg.mark_frac)
        lines.append(f"{i}. {render(c.tokens, marks)}")
        common.update(c.tokens[t].strip() for t in marks if c.tokens[t].strip())
    words = ", ".join(f'"{w}"' for w, _ in common.most_common(5)) or "(none)"
    return [msg("system", EXPLAINER_SYSTEM),
            msg("user", EXPLAINER_TEMPLATE.format(examples="\n".join(lines), common=words))]


_LEAD_IN = re.compile(
    r"^\W*(?:(?:label|explanation|answer|pattern|feature|description|phrase)\W*?:|(?:the )?(?:(?:marked|"
    r"highlighted) words|words (?:marked|highlighted))(?: most often)?(?: all)?(?: are| have| share| is)?(?: in common)?"
    r"(?: a common pattern of)?\W*?:?(?=\s|$))\s*", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


def parse_label(text: str) -> str | None:
    """A label from the explainer's reply: its first line without a lead-in ("Description:",
    "The marked words are:") or markers; a lead-in followed by a list gives the list's distinct
    items, comma-separated (what a small explainer often writes)."""
    lines = [ln.strip() for ln in text.replace("<<", "").replace(">>", "").splitlines() if ln.strip()]
    if not lines:
        return None
    head = _LEAD_IN.sub("", lines[0]).strip()
    if not head or head.endswith(":"):
        items = [_BULLET.sub("", ln).strip().strip("\"'`*,").strip() for ln in lines[1:] if _BULLET.match(ln)]
        head = ", ".join(dict.fromkeys(i for i in items if i)) or head.rstrip(":")
    head = head.strip().strip("`*").strip().rstrip(".").strip()
    if len(head) > 1 and head[0] == head[-1] and head[0] in "\"'" and head.count(head[0]) == 2:
        head = head[1:-1].strip()
    return head[:LABEL_MAX_CHARS] or None


def detection_prompt(label: str, ctx: Context) -> list:
    return [msg("system", SCORER_SYSTEM),
            msg("user", DETECTION_TEMPLATE.format(label=label, text=render(ctx.tokens)))]


def fuzzing_prompt(label: str, ctx: Context, marks: Sequence[int]) -> list:
    return [msg("system", SCORER_SYSTEM),
            msg("user", FUZZING_TEMPLATE.format(label=label, text=render(ctx.tokens, marks)))]


def parse_yes_no(text: str) -> bool | None:
    """Yes/No from a generated reply: its first word, else the only one of yes/no it contains.

    An echoed "Yes or No" is removed first, so it decides nothing.
    """
    text = re.sub(r"\b(?:yes\s*(?:or|/)\s*no|no\s*(?:or|/)\s*yes)\b", " ", text, flags=re.IGNORECASE)
    m = re.match(r"^\W*(yes|no)\b", text, re.IGNORECASE)
    if m:
        return m.group(1).lower() == "yes"
    found = {w.lower() for w in re.findall(r"\b(yes|no)\b", text, re.IGNORECASE)}
    return found.pop() == "yes" if len(found) == 1 else None


# ------------------------------------------------------------------------------------ explain
def explain(examples: Sequence[LatentExamples], explainer: ChatModel,
            cfg: AutoInterpConfig) -> list[tuple[str | None, str | None]]:
    """Label each latent from its shown windows; returns ``(label, error)`` per latent.

    A latent with no activating window is not sent to the explainer (error says so).
    """
    out: list[tuple[str | None, str | None]] = [(None, DEAD)] * len(examples)
    todo = [i for i, ex in enumerate(examples) if ex.shown]
    gen = GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=0.0)
    comps = explainer.generate([explainer_prompt(examples[i], cfg) for i in todo], gen) if todo else []
    for i, comp in zip(todo, comps, strict=True):
        if not comp.ok:
            out[i] = (None, f"explainer error: {comp.error}")
            continue
        label = parse_label(comp.text)
        out[i] = (label, None) if label else (None, f"no label in the explainer's reply {comp.text[:80]!r}")
    return out


# ------------------------------------------------------------------------------------ scoring
def resolve_scoring(scorer: ChatModel, mode: str = "auto") -> str:
    """``logprob`` when the scorer can score continuations (or was told to), else ``generate``."""
    if mode != "auto":
        return mode
    return "logprob" if can_score(scorer) else "generate"


def ask_scorer(scorer: ChatModel, convs: list, mode: str, cfg: AutoInterpConfig) -> list[tuple[bool | None, float | None]]:
    """One (answer, Yes-minus-No log-likelihood margin) per conversation, ``batch_size`` at a time."""
    out: list[tuple[bool | None, float | None]] = []
    gen = GenerationConfig(max_new_tokens=cfg.scorer_max_new_tokens, temperature=0.0)
    for s in range(0, len(convs), cfg.batch_size):
        chunk = convs[s:s + cfg.batch_size]
        if mode == "logprob":
            for yes, no in scorer.score(chunk, [list(CANDIDATES)] * len(chunk)):
                out.append((yes > no, yes - no))
        else:
            out.extend((parse_yes_no(c.text) if c.ok else None, None) for c in scorer.generate(chunk, gen))
    return out


def _auc(pairs: list[tuple[bool, float]]) -> float | None:
    pos = [m for t, m in pairs if t]
    neg = [m for t, m in pairs if not t]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def tally(truth: list[bool], answers: list[tuple[bool | None, float | None]]) -> dict:
    """Balanced accuracy and counts of one latent's items; unscorable answers are kept apart."""
    c = Counter((t, p) for t, (p, _) in zip(truth, answers, strict=True))
    tp, fn, tn, fp = c[True, True], c[True, False], c[False, False], c[False, True]
    bal = (tp / (tp + fn) + tn / (tn + fp)) / 2 if tp + fn and tn + fp else None
    margins = [(t, m) for t, (_, m) in zip(truth, answers) if m is not None]
    return {"bal_acc": bal, "n": tp + fn + tn + fp, "tp": tp, "tn": tn, "fp": fp, "fn": fn,
            "unscorable": c[True, None] + c[False, None], "auc": _auc(margins),
            "items": [[int(t), None if p is None else int(p), None if m is None else round(m, 3)]
                      for t, (p, m) in zip(truth, answers)]}


def scoring_items(kind: str, ex: LatentExamples, label: str | None,
           skip: AbstractSet[int] = frozenset()) -> tuple[list[list[Message]], list[bool]]:
    """The scorer's conversations for one latent and their truths (none without a label)."""
    if label is None:
        return [], []
    if kind == "detection":
        windows = [(c, True) for c in ex.positives] + [(c, False) for c in ex.negatives]
        items = [(detection_prompt(label, c), t) for c, t in windows if c.window not in skip]
    else:
        items = [(fuzzing_prompt(label, c, m), t) for c, m, t in ex.fuzz if c.window not in skip]
    return [conv for conv, _ in items], [t for _, t in items]


def _score(kind, examples, labels, scorer, cfg, mode) -> list[dict]:
    mode = resolve_scoring(scorer, mode)
    built = [scoring_items(kind, ex, lab) for ex, lab in zip(examples, labels, strict=True)]
    answers = ask_scorer(scorer, [c for convs, _ in built for c in convs], mode, cfg)
    out, at = [], 0
    for convs, truth in built:
        out.append(tally(truth, answers[at:at + len(convs)]))
        at += len(convs)
    return out


def score_detection(examples: Sequence[LatentExamples], labels: Sequence[str | None], scorer: ChatModel,
                    cfg: AutoInterpConfig, mode: str | None = None) -> list[dict]:
    """Detection result per latent (``bal_acc`` None when a class has no decided item)."""
    return _score("detection", examples, labels, scorer, cfg, mode or cfg.scoring)


def score_fuzzing(examples: Sequence[LatentExamples], labels: Sequence[str | None], scorer: ChatModel,
                  cfg: AutoInterpConfig, mode: str | None = None) -> list[dict]:
    """Fuzzing result per latent (positives: true marks; negatives: as many random marks)."""
    return _score("fuzzing", examples, labels, scorer, cfg, mode or cfg.scoring)
