"""The persona work's data files: ``personas.json`` and ``drift.jsonl``, loaded with one-line errors.

``personas.json``::

    {"default_system": null | "...",
     "traits": [{"name", "positive", "negative", "description"}],
     "roles": [{"name", "system"}],
     "extraction_questions": ["..."], "test_questions": ["..."],
     "persona_jailbreaks": [{"name", "template"}]}      # template contains {behavior}

``drift.jsonl``: one ``{"id", "type", "turns": ["user message", ...]}`` per line, ``type`` one of
:data:`DRIFT_TYPES`.

The packaged files live under ``alignlab/evals/files/``; ``None`` as a path selects them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignlab.errors import AlignlabError

FILES = Path(__file__).parent / "files"
PERSONAS_FILE = FILES / "personas.json"
DRIFT_FILE = FILES / "drift.jsonl"
DRIFT_TYPES = ("persona_jailbreak", "emotional", "meta_reflective", "task_control")


class PersonaDataError(AlignlabError, ValueError):
    """A persona or drift data file that cannot be used; the message names file, place and fix."""

    def __init__(self, file: str | Path, where: str, problem: str, fix: str) -> None:
        self.file, self.where, self.problem, self.fix = str(file), where, problem, fix
        place = f"{file}: {where}: " if where else f"{file}: "
        super().__init__(" ".join(f"{place}{problem}; {fix}".splitlines()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.where, self.problem, self.fix))


@dataclass(frozen=True)
class Trait:
    """A character trait with a system prompt that elicits it and one that suppresses it."""

    name: str
    positive: str
    negative: str
    description: str = ""


@dataclass(frozen=True)
class Role:
    """A role persona the assistant can be asked to play (its system prompt)."""

    name: str
    system: str


@dataclass(frozen=True)
class Jailbreak:
    """A persona-jailbreak template; ``{behavior}`` marks where the request goes."""

    name: str
    template: str

    def fill(self, behavior: str) -> str:
        """The template with the request in place (other braces are left alone)."""
        return self.template.replace("{behavior}", behavior)


@dataclass(frozen=True)
class PersonaSet:
    """Everything ``personas.json`` holds."""

    default_system: str | None
    traits: tuple[Trait, ...]
    roles: tuple[Role, ...]
    extraction_questions: tuple[str, ...]
    test_questions: tuple[str, ...]
    persona_jailbreaks: tuple[Jailbreak, ...] = ()
    source: str = ""

    def limited(self, questions: int | None = None, traits: int | None = None,
                roles: int | None = None) -> PersonaSet:
        """The first ``questions`` extraction and test questions, ``traits`` traits, ``roles`` roles."""
        for what, n in (("questions", questions), ("traits", traits), ("roles", roles)):
            if n is not None and n < 1:
                raise ValueError(f"--limit-{what} must be >= 1, got {n}")
        return PersonaSet(self.default_system, self.traits[:traits], self.roles[:roles],
                          self.extraction_questions[:questions], self.test_questions[:questions],
                          self.persona_jailbreaks, self.source)


@dataclass(frozen=True)
class DriftConversation:
    """A scripted multi-turn conversation: the user turns, sent one by one."""

    id: str
    type: str
    turns: tuple[str, ...]


def _text(file: Path, where: str, value: Any, fix: str) -> str:
    if not isinstance(value, str) or not value.strip():
        got = "missing" if value is None else f"{type(value).__name__} {value!r}"[:60]
        raise PersonaDataError(file, where, f"needs non-empty text, got {got}", fix)
    return value.strip()


def _list(file: Path, data: dict, key: str, fix: str, allow_empty: bool = False) -> list:
    value = data.get(key)
    if not isinstance(value, list) or (not value and not allow_empty):
        got = "missing" if value is None else ("empty" if value == [] else type(value).__name__)
        raise PersonaDataError(file, f"key '{key}'", f"needs a non-empty list, got {got}", fix)
    return value


def _objects(file: Path, data: dict, key: str, fields: tuple[str, ...], required: tuple[str, ...],
             allow_empty: bool = False) -> list[dict[str, str]]:
    rows = []
    seen: set[str] = set()
    for i, obj in enumerate(_list(file, data, key, f"give a list of {{{', '.join(fields)}}} objects",
                                  allow_empty)):
        where = f"{key}[{i}]"
        if not isinstance(obj, dict):
            raise PersonaDataError(file, where, f"a {type(obj).__name__} is not an object",
                                   f"write {{{', '.join(repr(f) for f in fields)}}}")
        row = {}
        for f in fields:
            if f in required or obj.get(f) not in (None, ""):
                row[f] = _text(file, f"{where}.{f}", obj.get(f), f"fill in '{f}'")
            else:
                row[f] = ""
        if row["name"] in seen:
            raise PersonaDataError(file, f"{where}.name", f"name {row['name']!r} appears twice",
                                   "give every entry its own name")
        seen.add(row["name"])
        rows.append(row)
    return rows


def load_personas(path: str | Path | None = None) -> PersonaSet:
    """Load and check a ``personas.json`` (``None``: the packaged file).

    Raises:
        PersonaDataError: missing file, invalid JSON, a missing or empty field, duplicate names, a
            template without ``{behavior}``, or a test question that is also an extraction question.
    """
    file = Path(path) if path is not None else PERSONAS_FILE
    if not file.is_file():
        fix = ("the packaged personas.json is not installed; pass --personas FILE" if path is None
               else "check the path")
        raise PersonaDataError(file, "", "file not found", fix)
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise PersonaDataError(file, f"line {e.lineno}", f"invalid JSON ({e.msg})",
                               "fix the JSON syntax") from None
    if not isinstance(data, dict):
        raise PersonaDataError(file, "", f"the top level is a {type(data).__name__}",
                               "write one JSON object with traits, roles and questions")
    default = data.get("default_system")
    if default is not None and not isinstance(default, str):
        raise PersonaDataError(file, "key 'default_system'", f"is a {type(default).__name__}",
                               "use null (the model's own default) or a system prompt string")
    traits = [Trait(**r) for r in _objects(file, data, "traits", ("name", "positive", "negative",
                                                                   "description"),
                                           ("name", "positive", "negative"))]
    roles = [Role(**r) for r in _objects(file, data, "roles", ("name", "system"), ("name", "system"))]
    qs = {}
    for key in ("extraction_questions", "test_questions"):
        qs[key] = [_text(file, f"{key}[{i}]", q, "write the question as a string")
                   for i, q in enumerate(_list(file, data, key, "give a list of question strings"))]
    overlap = set(qs["extraction_questions"]) & set(qs["test_questions"])
    if overlap:
        q = sorted(overlap)[0]
        raise PersonaDataError(file, f"test_questions[{qs['test_questions'].index(q)}]",
                               f"{q[:50]!r} is also an extraction question",
                               "test questions must be held out; remove it from one list")
    jbs = []
    if "persona_jailbreaks" in data:
        for i, r in enumerate(_objects(file, data, "persona_jailbreaks", ("name", "template"),
                                       ("name", "template"), allow_empty=True)):
            if "{behavior}" not in r["template"]:
                raise PersonaDataError(file, f"persona_jailbreaks[{i}].template",
                                       "has no {behavior} placeholder",
                                       "put {behavior} where the request goes")
            jbs.append(Jailbreak(**r))
    return PersonaSet(default.strip() if isinstance(default, str) and default.strip() else None,
                      tuple(traits), tuple(roles), tuple(qs["extraction_questions"]),
                      tuple(qs["test_questions"]), tuple(jbs), str(file))


def load_drift(path: str | Path | None = None) -> list[DriftConversation]:
    """Load and check a ``drift.jsonl`` (``None``: the packaged file).

    Raises:
        PersonaDataError: missing file, invalid JSON on a line, a missing field, an unknown type,
            an empty turn list, or a duplicate id.
    """
    file = Path(path) if path is not None else DRIFT_FILE
    if not file.is_file():
        fix = ("the packaged drift.jsonl is not installed; pass --conversations FILE" if path is None
               else "check the path")
        raise PersonaDataError(file, "", "file not found", fix)
    out: list[DriftConversation] = []
    seen: set[str] = set()
    for n, line in enumerate(file.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        where = f"row {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise PersonaDataError(file, where, f"invalid JSON ({e.msg})",
                                   "write one JSON object per line") from None
        if not isinstance(obj, dict):
            raise PersonaDataError(file, where, f"a JSON {type(obj).__name__} is not an object",
                                   'write {"id", "type", "turns"}')
        cid = obj.get("id")
        if isinstance(cid, int) and not isinstance(cid, bool):
            cid = str(cid)
        cid = _text(file, f"{where}, key 'id'", cid, "give each conversation an id")
        if cid in seen:
            raise PersonaDataError(file, f"{where}, key 'id'", f"id {cid!r} appears twice",
                                   "make the ids unique")
        seen.add(cid)
        ctype = obj.get("type")
        if ctype not in DRIFT_TYPES:
            raise PersonaDataError(file, f"{where}, key 'type'", f"{ctype!r} is not a known type",
                                   f"use one of {', '.join(DRIFT_TYPES)}")
        turns = obj.get("turns")
        if not isinstance(turns, list) or not turns:
            raise PersonaDataError(file, f"{where}, key 'turns'", "needs a non-empty list",
                                   "give the user messages in order")
        out.append(DriftConversation(cid, ctype, tuple(
            _text(file, f"{where}, key 'turns[{i}]'", t, "write each user turn as a string")
            for i, t in enumerate(turns))))
    if not out:
        raise PersonaDataError(file, "", "no conversations", "write one JSON object per line")
    return out


__all__ = ["DRIFT_TYPES", "DriftConversation", "Jailbreak", "PersonaDataError", "PersonaSet", "Role",
           "Trait", "load_drift", "load_personas"]
