"""Workspace: a folder holding a SQLite database (WAL) of runs and records, plus artifacts.

Records are committed one by one as they are produced, so a run killed at any moment loses at most
the item in flight; ``Workspace.open_run(run_id)`` resumes it and ``Run.done_keys()`` says what to
skip.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignlab.errors import AlignlabError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  stage TEXT NOT NULL,
  config TEXT NOT NULL,
  status TEXT NOT NULL,
  created REAL NOT NULL,
  updated REAL NOT NULL,
  version TEXT NOT NULL,
  metrics TEXT
);
CREATE TABLE IF NOT EXISTS records (
  run_id TEXT NOT NULL REFERENCES runs(id),
  key TEXT NOT NULL,
  data TEXT NOT NULL,
  created REAL NOT NULL,
  PRIMARY KEY (run_id, key)
);
"""

DEFAULT_WORKSPACE = "alignlab-runs"


def _version() -> str:
    from alignlab import __version__

    return __version__


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(SCHEMA)
    return con


class RunNotFound(AlignlabError, KeyError):
    pass


@dataclass
class RunInfo:
    id: str
    stage: str
    config: dict[str, Any]
    status: str
    created: float
    updated: float
    version: str
    metrics: dict[str, Any] | None


class Workspace:
    """A folder of runs: ``runs.sqlite`` and ``artifacts/RUN_ID/``."""

    def __init__(self, root: str | os.PathLike = DEFAULT_WORKSPACE) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "artifacts").mkdir(exist_ok=True)
        self.db_path = self.root / "runs.sqlite"
        self._con = _connect(self.db_path)

    def close(self) -> None:
        self._con.close()

    def new_run(self, stage: str, config: dict[str, Any], run_id: str | None = None) -> Run:
        """Create a run with a fresh id (``STAGE-YYYYmmdd-HHMMSS-xxxx``) and status ``running``."""
        now = time.time()
        rid = run_id or f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        self._con.execute(
            "INSERT INTO runs (id, stage, config, status, created, updated, version) "
            "VALUES (?, ?, ?, 'running', ?, ?, ?)",
            (rid, stage, json.dumps(config, sort_keys=True), now, now, _version()),
        )
        return Run(self, rid)

    def read_run(self, run_id: str) -> Run:
        """A finished (or any) run to read its records, leaving its status alone; RunNotFound if absent."""
        self.info(run_id)
        return Run(self, run_id)

    def open_run(self, run_id: str) -> Run:
        """Open an existing run to resume it; raises RunNotFound with the ids present."""
        row = self._con.execute("SELECT id FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            known = [r.id for r in self.runs()][-5:]
            raise RunNotFound(
                f"run {run_id!r} not found in {self.root}; recent runs: {', '.join(known) or 'none'}")
        self._con.execute("UPDATE runs SET status='running', updated=? WHERE id=?", (time.time(), run_id))
        return Run(self, run_id)

    def start_run(self, stage: str, config: dict[str, Any], resume: str | None = None,
                  must_match: tuple[str, ...] = ()) -> Run:
        """A new run, or (``resume``) the run with that id when its stored config agrees with
        ``config`` on every key in ``must_match``; otherwise one ValueError line naming the key."""
        if not resume:
            return self.new_run(stage, config)
        run = self.open_run(resume)
        stored = run.info.config
        for k in must_match:
            if stored.get(k) != config.get(k):
                shown = repr(stored.get(k))
                shown = f" ({shown})" if len(shown) <= 80 else ""
                raise ValueError(f"--resume {resume}: this run was started with a different {k!r}{shown}; "
                                 f"rerun with the same settings or start a new run")
        return run

    def log_result(self, stage: str, config: dict[str, Any], metrics: dict[str, Any],
                   out_dir: str | os.PathLike | None = None) -> Run:
        """Register a finished piece of work that keeps no records here (a guard eval, an SAE's
        auto-interp, a judge validation): a run with status ``done`` whose metrics name ``out_dir``,
        so the lab report can find its ``results.json``."""
        run = self.new_run(stage, config)
        run.finish({**metrics, **({"out_dir": str(Path(out_dir).resolve())} if out_dir is not None else {})})
        return run

    def latest(self, stage: str, where: Callable[[RunInfo], bool] | None = None) -> RunInfo | None:
        """The most recent finished run of ``stage`` (optionally one ``where`` accepts)."""
        for r in reversed(self.runs(stage)):
            if r.status == "done" and (where is None or where(r)):
                return r
        return None

    def info(self, run_id: str) -> RunInfo:
        row = self._con.execute(
            "SELECT id, stage, config, status, created, updated, version, metrics FROM runs WHERE id=?",
            (run_id,),
        ).fetchone()
        if row is None:
            known = [r[0] for r in self._con.execute("SELECT id FROM runs ORDER BY created DESC LIMIT 5")]
            raise RunNotFound(f"run {run_id!r} not found in {self.root}; recent runs: {', '.join(known) or 'none'}")
        return RunInfo(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6],
                       json.loads(row[7]) if row[7] else None)

    def runs(self, stage: str | None = None) -> list[RunInfo]:
        q = "SELECT id FROM runs" + (" WHERE stage = ?" if stage else "") + " ORDER BY created"
        return [self.info(r[0]) for r in self._con.execute(q, (stage,) if stage else ())]

    def artifacts_dir(self, run_id: str) -> Path:
        d = self.root / "artifacts" / run_id
        d.mkdir(parents=True, exist_ok=True)
        return d


class Run:
    """A handle on one run: add records, list what is done, finish with metrics."""

    def __init__(self, ws: Workspace, run_id: str) -> None:
        self.ws = ws
        self.id = run_id

    @property
    def info(self) -> RunInfo:
        return self.ws.info(self.id)

    @property
    def artifacts(self) -> Path:
        return self.ws.artifacts_dir(self.id)

    def add(self, key: str, data: dict[str, Any]) -> None:
        """Commit one record now. Adding a key twice keeps the first (resume is idempotent)."""
        con = self.ws._con
        con.execute(
            "INSERT OR IGNORE INTO records (run_id, key, data, created) VALUES (?, ?, ?, ?)",
            (self.id, key, json.dumps(data), time.time()),
        )
        con.execute("UPDATE runs SET updated=? WHERE id=?", (time.time(), self.id))

    def done_keys(self) -> set[str]:
        return {r[0] for r in self.ws._con.execute("SELECT key FROM records WHERE run_id=?", (self.id,))}

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.ws._con.execute("SELECT data FROM records WHERE run_id=? AND key=?",
                                   (self.id, key)).fetchone()
        return json.loads(row[0]) if row else None

    def records(self, prefix: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Records in the order they were produced, optionally those whose key starts with prefix."""
        q = "SELECT key, data FROM records WHERE run_id=?"
        args: tuple = (self.id,)
        if prefix is not None:
            q += " AND key LIKE ? ESCAPE '\\'"
            args += (prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",)
        for k, d in self.ws._con.execute(q + " ORDER BY rowid", args).fetchall():
            yield k, json.loads(d)

    def count(self) -> int:
        return self.ws._con.execute("SELECT COUNT(*) FROM records WHERE run_id=?", (self.id,)).fetchone()[0]

    def finish(self, metrics: dict[str, Any] | None = None, status: str = "done") -> None:
        self.ws._con.execute("UPDATE runs SET status=?, metrics=?, updated=? WHERE id=?",
                             (status, json.dumps(metrics) if metrics is not None else None,
                              time.time(), self.id))

    def fail(self, error: str) -> None:
        self.finish({"error": error}, status="failed")
