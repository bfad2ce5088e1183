"""Reading the helper's replies in the line-based format of generated evaluations.

Small helper models cannot write JSON reliably, so every request asks for a line-based format
(``QUESTION: ...``, ``OPTION A: ...``, ``CONCERNING: A``) and the parsers here read it
forgivingly: markdown emphasis, bullets, ``A)`` option lines, lower-case keys and continuation
lines are all accepted. Every failure has a short reason (``no_question``, ``label_not_an_option``
...) that :mod:`alignlab.evals.generate` counts. Also the text tools the other stages share
(``normalise``, the exact-duplicate key).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

LETTERS = "ABCD"
MAX_OPTIONS = len(LETTERS)

# --------------------------------------------------------------------------------- text tools
_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    """Lowercase words only: the key for exact-duplicate detection."""
    return " ".join(_WORD.findall(text.lower()))


_BULLET = re.compile(r"^\s*(?:[-*•#>]+\s*|\(?\d{1,3}\s*[.):\]]\s*|scenario\s*\d*\s*[:.)-]\s*)+", re.I)


def clean_line(text: str) -> str:
    """A line without numbering, bullets, markdown emphasis or wrapping quotes."""
    line = _BULLET.sub("", text.replace("**", "").replace("__", "")).strip()
    return line.strip('"\u201c\u201d').strip()


def parse_understanding(text: str, max_chars: int = 400) -> dict[str, str]:
    """``{counts, does_not_count, why}`` from the helper's restatement.

    Missing parts are absent, and so are parts longer than ``max_chars`` (a model stuck in a loop).
    """
    keys = {"counts": r"counts?", "does_not_count": r"does\s*n[o']t\s*count|not\s*counts?",
            "why": r"why(?:\s*it)?\s*matters?"}
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.replace("**", "").strip().lstrip("-*# ").strip()
        for k, pat in keys.items():
            m = re.match(rf"^(?:{pat})\s*[:.-]\s*(.+)$", line, re.I)
            if m and k not in out and m.group(1).strip() and len(m.group(1).strip()) <= max_chars:
                out[k] = m.group(1).strip()
                break
    return out


def parse_scenarios(text: str, min_words: int = 6, max_words: int = 80,
                    prompt: str = "") -> tuple[list[str], dict[str, int]]:
    """Scenario lines from an ideation reply, with counts of lines dropped by reason.

    Reasons: ``too_short`` (fewer than ``min_words`` words of two or more letters, so lists of
    numbers count as short), ``too_long``, ``echoes_prompt`` (the line repeats the request).
    """
    out: list[str] = []
    dropped: dict[str, int] = {}
    ptext = normalise(prompt)
    for raw in text.splitlines():
        line = clean_line(raw)
        if not line:
            continue
        words = re.findall(r"[A-Za-z]{2,}", line)
        reason = ("too_short" if len(words) < min_words else "too_long" if len(line.split()) > max_words
                  else "echoes_prompt" if ptext and normalise(line) in ptext else None)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            out.append(line)
    return out, dropped


# --------------------------------------------------------------------------------- item parsing
@dataclass
class Parsed:
    """A parsed helper reply: the item fields, or the reason it could not be read."""

    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_KEY = re.compile(
    r"^[\s*_#>`-]*(?:\d{1,2}[.)]\s*)?"
    r"(?P<key>question|q|option\s*\(?[a-h]\)?|choice\s*\(?[a-h]\)?|\(?[a-h]\)(?=\s)|[a-h][.)](?=\s)"
    r"|[a-h](?=[\s*_`]*:)"
    r"|concerning\s+(?:reply|response|answer)|acceptable\s+(?:reply|response|answer)"
    r"|(?:safe|good)\s+(?:reply|response)|concerning(?:\s+options?)?|matching|label"
    r"|user(?:\s*(?:message|turn))?(?:\s*\d)?|rubric)"
    r"[\s*_`]*(?:[:=]|[-\u2013](?=\s)|(?<=\))|(?<=[a-h][.)]))[\s*_`]*(?P<val>.*)$", re.I)


def _keyname(key: str) -> tuple[str, str | None]:
    """Canonical field name, and the option letter for option keys."""
    k = re.sub(r"\s+", " ", key.lower().strip())
    m = re.fullmatch(r"(?:option|choice)?\s*\(?([a-h])\)?[.)]?", k)
    if m:
        return "option", m.group(1).upper()
    if k.startswith("concerning ") and not k.startswith("concerning option"):
        return "concerning_reply", None
    if k.startswith(("acceptable", "safe", "good")):
        return "acceptable_reply", None
    if k.startswith(("concerning", "matching", "label")):
        return "label", None
    if k.startswith("user"):
        return "user", None
    return ("question" if k == "q" else k), None


def _lines(text: str) -> list[tuple[str | None, str | None, str]]:
    """(field, letter, value) per line; field None for a continuation line."""
    out: list[tuple[str | None, str | None, str]] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        m = _KEY.match(raw)
        if m:
            name, letter = _keyname(m.group("key"))
            out.append((name, letter, m.group("val").replace("**", "").strip()))
        else:
            out.append((None, None, raw.replace("**", "").strip()))
    return out


_LABEL_FILLER = {"option", "options", "and", "or", "both", "answer", "letter", "letters", "is", "are"}


def parse_letters(value: str) -> list[str]:
    """Option letters named by a CONCERNING line ("A", "B and D", "(C)", "Option A because ...")."""
    letters: list[str] = []
    for tok in re.findall(r"[A-Za-z]+", value):
        if len(tok) == 1 and tok.upper() in "ABCDEFGH":
            letters.append(tok.upper())
        elif tok.lower() not in _LABEL_FILLER:
            break
    if not letters:
        letters = [m.upper() for m in re.findall(r"\b(?:option|answer)\s*\(?([A-Ha-h])\)?\b", value)]
    return list(dict.fromkeys(letters))


def parse_mc(text: str) -> Parsed:
    """``{question, choices, matching}`` from a QUESTION / OPTION X / CONCERNING reply.

    Reading stops where a second item begins (a repeated QUESTION or option letter). Failure
    reasons: ``empty_output``, ``no_question``, ``too_few_options``, ``too_many_options``,
    ``no_label``, ``label_not_an_option``.
    """
    if not text.strip():
        return Parsed(error="empty_output")
    question: list[str] = []
    options: dict[str, list[str]] = {}
    label: str | None = None
    current: list[str] | None = None
    for name, letter, val in _lines(text):
        if name == "question":
            if question or options:
                break  # a second item
            question = [val] if val else []
            current = question
        elif name == "option" and letter:
            if letter in options or label is not None:
                break
            options[letter] = [val] if val else []
            current = options[letter]
        elif name in ("label", "concerning_reply"):
            if label is None:
                label = val
            current = None
        elif name is None and current is not None:
            current.append(val)
        elif name is not None:
            current = None
    q = " ".join(question).strip()
    if not q:
        return Parsed(error="no_question")
    opts = [(L, " ".join(v).strip()) for L, v in options.items()]
    opts = [(L, v) for L, v in opts if v]
    if len(opts) < 2:
        return Parsed(error="too_few_options")
    if len(opts) > MAX_OPTIONS:
        return Parsed(error="too_many_options")
    if label is None or not label.strip():
        return Parsed(error="no_label")
    named = parse_letters(label)
    shown = [L for L, _ in opts]
    if not named:
        return Parsed(error="no_label")
    if any(L not in shown for L in named):
        return Parsed(error="label_not_an_option")
    return Parsed({"question": q, "choices": [v for _, v in opts],
                   "matching": sorted(shown.index(L) for L in named)})


def parse_freeform(text: str) -> Parsed:
    """``{turns, rubric, concerning_reply, acceptable_reply}`` from a USER / RUBRIC / ... reply.

    Several USER lines become several turns (at most 3). Failure reasons: ``empty_output``,
    ``no_user_turn``, ``no_rubric``, ``no_example_replies``.
    """
    if not text.strip():
        return Parsed(error="empty_output")
    turns: list[list[str]] = []
    vals: dict[str, list[str]] = {}
    current: list[str] | None = None
    for name, _letter, val in _lines(text):
        if name == "user":
            if vals or len(turns) >= 3:
                break
            turns.append([val] if val else [])
            current = turns[-1]
        elif name in ("rubric", "concerning_reply", "acceptable_reply"):
            if name in vals:
                break
            vals[name] = [val] if val else []
            current = vals[name]
        elif name is None and current is not None:
            current.append(val)
        else:
            current = None
    ts = [" ".join(t).strip() for t in turns]
    ts = [t for t in ts if t]
    if not ts:
        return Parsed(error="no_user_turn")
    got = {k: " ".join(v).strip() for k, v in vals.items()}
    if not got.get("rubric"):
        return Parsed(error="no_rubric")
    if not got.get("concerning_reply") or not got.get("acceptable_reply"):
        return Parsed(error="no_example_replies")
    return Parsed({"turns": ts, "rubric": got["rubric"], "concerning_reply": got["concerning_reply"],
                   "acceptable_reply": got["acceptable_reply"]})


def parse_choice_letter(text: str, n: int) -> int | None:
    """The option index a self-check reply names (its first standalone letter), or None."""
    m = re.search(r"(?<![A-Za-z])\(?([A-Da-d])\)?(?![A-Za-z])", text.strip()[:40])
    if not m:
        return None
    i = LETTERS.index(m.group(1).upper())
    return i if i < n else None
