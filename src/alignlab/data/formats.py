"""The field's behavior-file formats: HarmBench and JailbreakBench CSVs and plain prompt files.

Readers for UTF-8 text, CSV and JSON Lines that turn every problem into a
:class:`~alignlab.data.types.DataError` naming the file, row and column, and the loaders built on
them: ``load_harmbench_csv``, ``load_jailbreakbench_csv`` and ``load_prompt_file`` (CSV, JSONL or
one prompt per line). :func:`alignlab.data.behaviors.load_behaviors` picks one of them from a
file's extension and header.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alignlab.data.types import Behavior, DataError

ACCEPTED_EXTENSIONS = (".csv", ".jsonl", ".txt")
"""File extensions :func:`load_behaviors` understands (case-insensitive)."""

# HarmBench: Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID.
# JailbreakBench: Index, Goal, Target, Behavior, Category, Source.
_HARMBENCH_REQUIRED = ("Behavior", "SemanticCategory", "BehaviorID")
_JBB_REQUIRED = ("Index", "Goal", "Category")
# Header names that only occur in one of the two formats; any of them selects that loader.
HARMBENCH_MARKERS = frozenset({"BehaviorID", "SemanticCategory", "FunctionalCategory", "ContextString"})
JBB_MARKERS = frozenset({"Goal"})


# ---------------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    """Read a UTF-8 file (a BOM is dropped), turning OS and decoding errors into DataError."""
    if not path.exists():
        raise DataError(str(path), "file not found", "check the path (relative paths start from the current directory)")
    if not path.is_file():
        raise DataError(str(path), "not a regular file", "pass the path of a .csv, .jsonl or .txt file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(str(path), f"not valid UTF-8 text (byte {e.start})", "save the file as UTF-8") from None


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Read a CSV into its header and ``(row, record)`` pairs; rows are 1-based data records."""
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict[str, str]]] = []
    n = 0
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(str(path), "the file is empty", "add a header row and at least one data row")
        header = [h.strip() for h in header]
        seen: set[str] = set()
        for h in header:
            if h in seen:
                raise DataError(str(path), "column appears twice in the header", "rename or remove one of them", 0, h)
            seen.add(h)
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue  # blank line
            n += 1
            if len(fields) > len(header):
                raise DataError(
                    str(path),
                    f"{len(fields)} fields but the header has {len(header)}",
                    "quote fields that contain commas",
                    n,
                    header[-1],
                )
            rows.append((n, {h: (fields[i] if i < len(fields) else "") for i, h in enumerate(header)}))
    except csv.Error as e:
        raise DataError(str(path), f"not valid CSV ({e})", "check the quoting in this row", n + 1) from None
    return header, rows


def parse_jsonl(text: str, file: str) -> list[tuple[int, dict[str, Any]]]:
    """Parse JSON Lines into ``(line number, object)`` pairs, skipping blank lines."""
    rows: list[tuple[int, dict[str, Any]]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problem = f"invalid JSON ({e.msg} at character {e.pos + 1})"
            raise DataError(file, problem, "write one JSON object per line", n) from None
        if not isinstance(obj, dict):
            raise DataError(
                file,
                f"a JSON {type(obj).__name__} is not an object",
                'write one object per line, e.g. {"prompt": "..."}',
                n,
            )
        rows.append((n, obj))
    return rows


def _require_columns(file: str, found: Sequence[str], required: Sequence[str]) -> None:
    for col in required:
        if col not in found:
            listed = ", ".join(repr(c) for c in found) or "none"
            problem = f"required column is missing (columns found: {listed})"
            raise DataError(file, problem, f"add a '{col}' column", 0, col)


def require_field(file: str, row: int, record: dict[str, Any], key: str, *, required: bool) -> str:
    """One string field of a record, stripped; '' when absent and optional."""
    value = record.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(file, f"expected text, got {type(value).__name__}", "write the value as a string", row, key)
        value = str(value)
    value = value.strip()
    if required and not value:
        raise DataError(file, "required field is empty", "fill it in or remove the row", row, key)
    return value


def _split_tags(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def check_unique(file: str, items: Sequence[tuple[int, Behavior]], id_column: str) -> list[Behavior]:
    first_row: dict[str, int] = {}
    for row, b in items:
        if b.id in first_row:
            raise DataError(
                file,
                f"duplicate id '{b.id}' (also at row {first_row[b.id]})",
                "give every row a unique id",
                row,
                id_column,
            )
        first_row[b.id] = row
    return [b for _, b in items]


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------


def load_harmbench_csv(path: str | Path) -> list[Behavior]:
    """Load a HarmBench behavior CSV (e.g. ``harmbench_behaviors_text_all.csv``).

    Columns: ``Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID``;
    ``Behavior``, ``SemanticCategory`` and ``BehaviorID`` are required, the rest may be absent.

    Args:
        path: the CSV file.

    Returns:
        One Behavior per row: id=BehaviorID, category=SemanticCategory, context=ContextString,
        tags from the comma-separated Tags plus ``"functional:<FunctionalCategory>"``,
        ``source="harmbench"``.

    Raises:
        DataError: the file is missing, not CSV, lacks a required column or value, or repeats an id.
    """
    path = Path(path)
    file = str(path)
    header, rows = read_csv_rows(path)
    _require_columns(file, header, _HARMBENCH_REQUIRED)
    items: list[tuple[int, Behavior]] = []
    for row, rec in rows:
        tags = _split_tags(require_field(file, row, rec, "Tags", required=False))
        functional = require_field(file, row, rec, "FunctionalCategory", required=False)
        if functional:
            tags += (f"functional:{functional}",)
        items.append(
            (
                row,
                Behavior(
                    id=require_field(file, row, rec, "BehaviorID", required=True),
                    behavior=require_field(file, row, rec, "Behavior", required=True),
                    category=require_field(file, row, rec, "SemanticCategory", required=True),
                    context=require_field(file, row, rec, "ContextString", required=False),
                    source="harmbench",
                    tags=tags,
                ),
            )
        )
    return check_unique(file, items, "BehaviorID")


def load_jailbreakbench_csv(path: str | Path) -> list[Behavior]:
    """Load a JailbreakBench JBB-Behaviors CSV.

    Columns: ``Index, Goal, Target, Behavior, Category, Source``; ``Index``, ``Goal`` and
    ``Category`` are required.

    Args:
        path: the CSV file.

    Returns:
        One Behavior per row: id=``jbb-<Index>``, behavior=Goal, category=Category,
        tags=``("behavior:<Behavior>",)``, ``source="jailbreakbench"``.

    Raises:
        DataError: the file is missing, not CSV, lacks a required column or value, or repeats an id.
    """
    path = Path(path)
    file = str(path)
    header, rows = read_csv_rows(path)
    _require_columns(file, header, _JBB_REQUIRED)
    items: list[tuple[int, Behavior]] = []
    for row, rec in rows:
        name = require_field(file, row, rec, "Behavior", required=False)
        items.append(
            (
                row,
                Behavior(
                    id=f"jbb-{require_field(file, row, rec, 'Index', required=True)}",
                    behavior=require_field(file, row, rec, "Goal", required=True),
                    category=require_field(file, row, rec, "Category", required=True),
                    source="jailbreakbench",
                    tags=(f"behavior:{name}",) if name else (),
                ),
            )
        )
    return check_unique(file, items, "Index")


def load_prompt_file(path: str | Path) -> list[Behavior]:
    """Load a plain prompt file: CSV, JSONL, or text with one prompt per non-empty line.

    CSV columns / JSONL keys (names are case-insensitive in CSV): ``prompt`` or ``behavior``
    (required; ``behavior`` wins when both exist), and optional ``id`` (default ``"<stem>-<row>"``),
    ``category`` (default ``"uncategorized"``), ``benign``, ``context`` and ``tags`` (comma-separated
    text, or a JSON list of strings).

    Args:
        path: a ``.csv``, ``.jsonl`` or ``.txt`` file.

    Returns:
        The behaviors in file order, with ``source`` set to the file name.

    Raises:
        DataError: the file is missing, has an unknown extension, is malformed, lacks the prompt
            column or a prompt, or repeats an id.
    """
    path = Path(path)
    file = str(path)
    suffix = path.suffix.lower()
    records: list[tuple[int, dict[str, Any]]]
    if suffix == ".txt":
        text = _read_text(path)
        records = [(n, {"prompt": line}) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        keys: list[str] = ["prompt"]
    elif suffix == ".csv":
        header, csv_rows = read_csv_rows(path)
        lower = {h.lower(): h for h in header}
        # Rename case variants to lower case so "Prompt" and "prompt" both work.
        records = [(n, {k.lower(): v for k, v in rec.items()}) for n, rec in csv_rows]
        keys = list(lower)
        if "behavior" not in lower and "prompt" not in lower:
            listed = ", ".join(repr(h) for h in header) or "none"
            problem = f"required column is missing (columns found: {listed})"
            raise DataError(file, problem, "add a 'prompt' (or 'behavior') column", 0, "prompt")
    elif suffix == ".jsonl":
        records = parse_jsonl(_read_text(path), file)
        keys = []
    else:
        raise unknown_extension(path)

    items: list[tuple[int, Behavior]] = []
    for row, rec in records:
        if "behavior" in rec:
            text_key = "behavior"
        elif "prompt" in rec:
            text_key = "prompt"
        else:
            found = ", ".join(repr(k) for k in (keys or rec)) or "none"
            problem = f"required key is missing (keys found: {found})"
            raise DataError(file, problem, "add a 'prompt' (or 'behavior') key", row, "prompt")
        items.append(
            (
                row,
                Behavior(
                    id=require_field(file, row, rec, "id", required=False) or f"{path.stem}-{row}",
                    behavior=require_field(file, row, rec, text_key, required=True),
                    category=require_field(file, row, rec, "category", required=False) or "uncategorized",
                    benign=require_field(file, row, rec, "benign", required=False),
                    context=require_field(file, row, rec, "context", required=False),
                    source=path.name,
                    tags=_tags_value(file, row, rec.get("tags")),
                ),
            )
        )
    return check_unique(file, items, "id")


def _tags_value(file: str, row: int, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return _split_tags(value)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(t.strip() for t in value if t.strip())
    problem = f"expected a list of strings, got {json.dumps(value)[:60]}"
    raise DataError(file, problem, 'write e.g. "tags": ["a", "b"]', row, "tags")


def unknown_extension(path: Path) -> DataError:
    accepted = ", ".join(ACCEPTED_EXTENSIONS)
    return DataError(
        str(path),
        f"unknown extension '{path.suffix or '(none)'}'",
        f"use one of {accepted} (HarmBench and JailbreakBench CSVs are detected from the header)",
    )
