"""The base of the typed results the stages return, and the registry of their HTML reports.

A stage returns a :class:`Result`: its ``results.json`` contract as ``to_dict()``, typed properties
for the figures users read most, ``summary()`` for a notebook or a terminal, and ``save(dir)``,
which writes the data files and the report. Stages never render HTML themselves: ``alignlab.report``
registers one writer per result type (:func:`register_report`), and ``save`` calls it. Importing
``alignlab`` (the library API) or ``alignlab.report`` registers them all.

Example:
    >>> import alignlab
    >>> res = alignlab.run_redteam("scripted:Sure, here is how.", attacks="direct", limit=2)  # doctest: +SKIP
    >>> res.asr, res["asr_ci"]                                                                # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from alignlab.errors import AlignlabError

R = TypeVar("R", bound="Result")
ReportWriter = Callable[[Any, Path], Path]
_REPORTS: dict[type, ReportWriter] = {}


def register_report(result_type: type) -> Callable[[ReportWriter], ReportWriter]:
    """Register ``writer(result, path) -> path`` as the HTML report of ``result_type``."""

    def add(writer: ReportWriter) -> ReportWriter:
        _REPORTS[result_type] = writer
        return writer

    return add


def write_jsonl(path: Path, rows: Any) -> None:
    """One JSON object per line."""
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def report_writer(result: Any) -> ReportWriter:
    """The registered report writer of ``result``'s type.

    Raises:
        AlignlabError: when none is registered (import ``alignlab.report`` first).
    """
    writer = _REPORTS.get(type(result))
    if writer is None:
        raise AlignlabError(f"no report writer is registered for {type(result).__name__}; "
                            f"import alignlab.report first, or call save(..., report=False)")
    return writer


class Result(Mapping[str, Any]):
    """A stage's results: ``data`` is exactly what ``results.json`` holds.

    It reads like the dict stages used to return (``res["asr"]``, ``res.get("over_refusal")``), so
    code written against the results.json contract keeps working.
    """

    stage: ClassVar[str] = ""
    records_file: ClassVar[str | None] = None
    """Name of the JSONL file of per-item rows saved beside results.json (None: none)."""

    def __init__(self, data: dict[str, Any], rows: list[dict[str, Any]] | None = None,
                 out_dir: str | Path | None = None) -> None:
        self.data = data
        self.rows = list(rows or [])
        self.out_dir = Path(out_dir) if out_dir else None
        self._written: tuple[Path, str, int] | None = None
        """(folder, results.json text, rows) of the last write_data: save skips rewriting the same."""

    # -- the mapping view of results.json
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(run_id={self.data.get('run_id')!r}, out_dir={str(self.out_dir)!r})"

    @property
    def run_id(self) -> str | None:
        """The run's id in its workspace."""
        return self.data.get("run_id")

    def to_dict(self) -> dict[str, Any]:
        """The results.json contract (a copy)."""
        return json.loads(json.dumps(self.data))

    def summary(self) -> str:
        """A few lines for a terminal or a notebook."""
        return f"{self.stage} run {self.run_id}"

    # -- files
    def write_data(self, out: Path) -> None:
        """results.json and the per-item rows (no HTML)."""
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.data, indent=2)
        (out / "results.json").write_text(text)
        if self.records_file:
            write_jsonl(out / self.records_file, self.rows)
        self._written = (out, text, len(self.rows))

    def save(self, out: str | Path | None = None, *, report: bool = True) -> Path:
        """Write results.json, the per-item rows and (``report=True``) report.html into ``out``.

        Args:
            out: the folder (default: where the run wrote its data).

        Raises:
            AlignlabError: with no folder to write to, or when no report writer is registered for
                this result type (import ``alignlab.report`` first, or pass ``report=False``).
        """
        where = Path(out) if out is not None else self.out_dir
        if where is None:
            raise AlignlabError(f"{type(self).__name__}.save: pass the folder to write to")
        writer = report_writer(self) if report else None
        if self._written != (where, json.dumps(self.data, indent=2), len(self.rows)):
            self.write_data(where)  # a new folder, or results changed since the stage wrote them
        if writer is not None:
            writer(self, where / "report.html")
        self.out_dir = where
        return where

    @property
    def report_path(self) -> Path | None:
        """The report.html beside the data, when one was written."""
        p = self.out_dir / "report.html" if self.out_dir else None
        return p if p is not None and p.exists() else None

    @classmethod
    def load(cls: type[R], folder: str | Path) -> R:
        """A result read back from a folder holding results.json (and its rows file)."""
        d = Path(folder)
        f = d / "results.json"
        if not f.is_file():
            raise AlignlabError(f"{f}: file not found (a results folder holds results.json)")
        rows: list[dict[str, Any]] = []
        if cls.records_file and (d / cls.records_file).is_file():
            rows = [json.loads(x) for x in (d / cls.records_file).read_text().splitlines() if x.strip()]
        return cls(json.loads(f.read_text()), rows, d)
