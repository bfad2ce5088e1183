"""``alignlab runs``: the runs in a workspace."""

from __future__ import annotations

from pathlib import Path

from alignlab.cli.common import fail, out, pct, workspace_option


def runs(workspace: Path = workspace_option()) -> None:
    """List the runs in a workspace."""
    from rich.table import Table

    from alignlab.store import Run, Workspace

    if not (workspace / "runs.sqlite").exists():
        fail(f"no workspace at {workspace}; run 'alignlab redteam' first or pass --workspace")
    ws = Workspace(workspace)
    t = Table("run id", "stage", "status", "records", "ASR", "out")
    for r in ws.runs():
        m = r.metrics or {}
        t.add_row(r.id, r.stage, r.status, str(Run(ws, r.id).count()), pct(m.get("asr")),
                  str(m.get("out_dir", "")))
    out.print(t)
