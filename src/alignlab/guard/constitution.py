"""A constitution: per category, what is restricted and what is explicitly permitted nearby.

The file is YAML (or Markdown whose YAML front matter holds the same keys)::

    name: my-constitution
    version: 1
    refusal_message: "I can't help with that."
    categories:
      - id: weapons
        title: Weapons
        restricted: Step-by-step help building weapons capable of mass harm ...
        permitted: History, policy, safe storage, fiction without operational detail ...
        restricted_examples: ["...", "..."]
        permitted_examples: ["...", "..."]

Validation errors name the file, the category and the field.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignlab.errors import AlignlabError

DEFAULT_PATH = Path(__file__).parent / "files" / "default_constitution.yaml"
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
MIN_EXAMPLES = 2


class ConstitutionError(AlignlabError, ValueError):
    """A constitution file that cannot be used; the message names file, category and field."""


@dataclass(frozen=True)
class Category:
    """One category of the constitution."""

    id: str
    """Short identifier (matches behavior categories, e.g. ``cybercrime``)."""
    title: str
    """Human-readable name."""
    restricted: str
    """What is not allowed."""
    permitted: str
    """What is explicitly allowed nearby (the boundary that must stay open)."""
    restricted_examples: tuple[str, ...]
    """Requests that should be blocked."""
    permitted_examples: tuple[str, ...]
    """Requests close to the boundary that must be allowed."""


@dataclass(frozen=True)
class Constitution:
    """A parsed, validated constitution."""

    name: str
    categories: tuple[Category, ...]
    version: str = "1"
    description: str = ""
    refusal_message: str = "I can't help with that request."
    path: str = ""
    raw_sha256: str = field(default="", compare=False)

    def category(self, cid: str) -> Category:
        for c in self.categories:
            if c.id == cid:
                return c
        raise KeyError(f"constitution {self.name!r} has no category {cid!r}")

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.categories]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "path": self.path,
                "sha256": self.raw_sha256, "categories": self.ids,
                "refusal_message": self.refusal_message}


def _fail(file: str, where: str, problem: str, fix: str) -> ConstitutionError:
    return ConstitutionError(f"{file}: {where}: {problem}; {fix}")


def _text(file: str, where: str, d: dict, key: str, required: bool = True) -> str:
    v = d.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise _fail(file, where, f"field '{key}' is missing or empty", f"add a '{key}:' text")
        return ""
    if not isinstance(v, (str, int, float)):
        raise _fail(file, where, f"field '{key}' must be text, got {type(v).__name__}",
                    f"write '{key}' as a string")
    return " ".join(str(v).split())


def _examples(file: str, where: str, d: dict, key: str) -> tuple[str, ...]:
    v = d.get(key)
    if not isinstance(v, list) or len(v) < MIN_EXAMPLES:
        raise _fail(file, where, f"field '{key}' needs a list of at least {MIN_EXAMPLES} examples",
                    f"add '{key}:' with '- ...' lines")
    out = []
    for i, e in enumerate(v):
        if not isinstance(e, str) or not e.strip():
            raise _fail(file, f"{where}.{key}[{i}]", "example must be non-empty text",
                        "write each example as a quoted string")
        out.append(" ".join(e.split()))
    return tuple(out)


def parse_constitution(data: Any, file: str = "<constitution>", raw: str = "") -> Constitution:
    """Validate parsed YAML into a :class:`Constitution`."""
    if not isinstance(data, dict):
        raise _fail(file, "top level", "expected a mapping with 'name' and 'categories'",
                    "see the default constitution for the format")
    name = _text(file, "top level", data, "name")
    cats = data.get("categories")
    if not isinstance(cats, list) or not cats:
        raise _fail(file, "top level", "field 'categories' must be a non-empty list",
                    "add 'categories:' with one '- id: ...' entry per category")
    seen: set[str] = set()
    out = []
    for i, c in enumerate(cats):
        where = f"categories[{i}]"
        if not isinstance(c, dict):
            raise _fail(file, where, "each category must be a mapping", "write '- id: ...' and its fields")
        cid = _text(file, where, c, "id")
        where = f"category '{cid}'"
        if not _ID_RE.match(cid):
            raise _fail(file, where, "field 'id' must be lowercase letters, digits, _ or -",
                        "use an id like 'cybercrime'")
        if cid in seen:
            raise _fail(file, where, "field 'id' repeats an earlier category", "give each category its own id")
        seen.add(cid)
        unknown = set(c) - {"id", "title", "restricted", "permitted", "restricted_examples",
                            "permitted_examples"}
        if unknown:
            raise _fail(file, where, f"unknown field(s) {sorted(unknown)}",
                        "use title, restricted, permitted, restricted_examples, permitted_examples")
        r_ex = _examples(file, where, c, "restricted_examples")
        p_ex = _examples(file, where, c, "permitted_examples")
        both = {e.lower() for e in r_ex} & {e.lower() for e in p_ex}
        if both:
            raise _fail(file, where, f"example {sorted(both)[0]!r} is both restricted and permitted",
                        "keep each example on one side")
        out.append(Category(
            id=cid, title=_text(file, where, c, "title", required=False) or cid,
            restricted=_text(file, where, c, "restricted"), permitted=_text(file, where, c, "permitted"),
            restricted_examples=r_ex, permitted_examples=p_ex))
    return Constitution(
        name=name, categories=tuple(out), version=str(data.get("version", "1")),
        description=_text(file, "top level", data, "description", required=False),
        refusal_message=_text(file, "top level", data, "refusal_message", required=False)
        or "I can't help with that request.",
        path=file, raw_sha256=hashlib.sha256(raw.encode()).hexdigest() if raw else "")


def load_constitution(path: str | Path | None = None) -> Constitution:
    """Load a constitution from YAML or Markdown front matter (default: the packaged one).

    Raises:
        ConstitutionError: with the file, category and field at fault.
    """
    import yaml

    p = Path(path) if path else DEFAULT_PATH
    file = str(p)
    if not p.exists():
        raise ConstitutionError(f"{file}: no such file; give a YAML constitution "
                                f"(or omit --constitution for the default)")
    raw = p.read_text(encoding="utf-8")
    text = raw
    if p.suffix.lower() in (".md", ".markdown"):
        m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", raw, re.S)
        if not m:
            raise ConstitutionError(f"{file}: no YAML front matter; start the file with '---', "
                                    f"the YAML keys, then '---'")
        text = m.group(1)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else "top level"
        raise ConstitutionError(f"{file}: {line}: not valid YAML ({getattr(e, 'problem', e)}); "
                                f"fix the indentation or quoting there") from None
    return parse_constitution(data, file, raw)
