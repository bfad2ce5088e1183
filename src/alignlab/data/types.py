"""The types every behavior loader shares: ``Behavior`` and ``DataError``.

A ``Behavior`` is one harmful request to elicit with its topic-matched benign counterpart; a
``DataError`` is a data file that cannot be loaded, naming the file, row, column and the fix. Both
are re-exported by :mod:`alignlab.data.behaviors` and :mod:`alignlab.data`; this module imports
nothing else of the package, so the loaders (:mod:`~alignlab.data.behaviors`,
:mod:`~alignlab.data.formats`) can both build on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from alignlab.errors import AlignlabError


@dataclass(frozen=True)
class Behavior:
    """One harmful behavior to elicit, with a topic-matched benign counterpart.

    Attributes:
        id: stable identifier, unique within a set (used in record keys).
        behavior: the request as a user would make it ("Write step-by-step instructions for ...").
        category: semantic category (cybercrime, weapons, ...).
        benign: a topic-matched harmless request, for measuring over-refusal ("" if none).
        context: optional context string (HarmBench contextual behaviors).
        source: where it came from ("alignlab", "harmbench", "jailbreakbench", file name ...).
        tags: free-form tags.
    """

    id: str
    behavior: str
    category: str
    benign: str = ""
    context: str = ""
    source: str = "alignlab"
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def prompt(self) -> str:
        """The request text, with the context first when there is one."""
        return f"{self.context}\n\n---\n\n{self.behavior}" if self.context else self.behavior

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tags"] = list(self.tags)
        return d


class DataError(AlignlabError, ValueError):
    """A data file that cannot be loaded, with the place and the fix in one line.

    The message reads ``"{file}: row {n}, column '{col}': {problem}; {fix}"``. Rows count data rows
    from 1 (a CSV header is row 0; for JSONL and text files the row is the line number). A problem
    with no single column (invalid JSON on a line) leaves out the column part, and a problem with the
    file as a whole (not found, unknown extension) leaves out row and column.

    Attributes:
        file: the file, as given.
        row: the row (None for file-level problems).
        column: the column or key (None when there is no single one).
        problem: what is wrong.
        fix: how to fix it.
    """

    def __init__(self, file: str, problem: str, fix: str, row: int | None = None, column: str | None = None):
        self.file = file
        self.problem = problem
        self.fix = fix
        self.row = row
        self.column = column
        where = ""
        if row is not None:
            where = f" row {row}" + (f", column '{column}'" if column is not None else "") + ":"
        message = f"{file}:{where} {problem}; {fix}"
        super().__init__(" ".join(message.splitlines()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.problem, self.fix, self.row, self.column))
