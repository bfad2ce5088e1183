"""``alignlab lab`` (the whole loop) and ``alignlab report WORKSPACE`` (the lab report of a workspace)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from alignlab.cli.common import DEFAULT_WORKSPACE, console, fail, out, progress, quiet_hf, user_errors, workspace_option


def lab_cmd(
    config: Path | None = typer.Option(None, help="Lab config YAML (default: the packaged default config)."),
    quick: bool = typer.Option(False, "--quick", help="The packaged quick config: a first look in a few minutes."),
    target: str | None = typer.Option(None, help="Target model spec (overrides the config's)."),
    helper: str | None = typer.Option(None, help="Helper model spec: attacker, guard-data writer, eval judge "
                                                    "(overrides the config's; default: the target itself)."),
    stages: str | None = typer.Option(None, help="Comma list of stages to run (default: the config's): "
                                                    "redteam, judges, guard, reattack, evals, interp, strategy."),
    out_dir: Path = typer.Option(Path("lab-out"), "--out", help="Folder for every stage's files, results.json "
                                                                "and report.html."),
    workspace: Path = workspace_option(),
    resume: str | None = typer.Option(None, help="Lab run id to resume (default: the one in OUT/lab.json)."),
) -> None:
    """Run the lab loop on a target: red-team -> guard -> re-attack -> evals -> SAE + auto-interp ->
    scorecard and ladder -> one report. Resumable stage by stage."""
    quiet_hf()
    from alignlab.lab import load_lab_config, run_lab
    from alignlab.store import Workspace

    with user_errors():
        cfg = load_lab_config(config, quick=quick)
        updates: dict[str, Any] = {k: v for k, v in (("target", target), ("helper", helper)) if v}
        if stages:
            updates["stages"] = [s.strip() for s in stages.split(",") if s.strip()]
        if updates:
            from alignlab.lab.config import config_from_dict

            cfg = config_from_dict({**cfg.model_dump(), **updates}, "command line")
    ws = Workspace(workspace)
    console.print(f"lab: {cfg.target} (helper {cfg.helper}, judge {cfg.judge}); stages "
                  f"{', '.join(s for s in cfg.stages)} -> {out_dir}", highlight=False)
    with user_errors(ValueError, RuntimeError, FileNotFoundError):
        res = run_lab(cfg, ws, out_dir, resume=resume,
                      log=lambda s: console.print(s, highlight=False, markup=False), progress=progress)
    print_lab_summary(res)
    out.print(f"\nlab run {res['run_id']} -> {out_dir}/report.html, results.json")


def report_cmd(
    workspace: Path = typer.Argument(DEFAULT_WORKSPACE, help="Workspace folder (runs.sqlite)."),
    out_dir: Path | None = typer.Option(None, "--out", help="Where report.html and results.json go "
                                                               "(default: WORKSPACE/report)."),
    config: Path | None = typer.Option(None, help="Lab config whose strategy section to use (default: packaged)."),
) -> None:
    """The lab report of a workspace: the ladder with the evidence at each level, the technique
    scorecard against published figures, the strategy models, links into each stage's report."""
    from alignlab.lab import build_lab_results, load_lab_config
    from alignlab.store import Workspace

    if not (workspace / "runs.sqlite").exists():
        fail(f"no workspace at {workspace} (no runs.sqlite); run 'alignlab lab' or a stage command first")
    with user_errors():
        cfg = load_lab_config(config)
    ws = Workspace(workspace)
    where = out_dir or workspace / "report"
    res = build_lab_results(ws, where, cfg)
    print_lab_summary(res)
    out.print(f"\n-> {where}/report.html, results.json")


def print_lab_summary(res: dict) -> None:
    """Print a lab run: seconds per stage, the ladder, the evidence applied and the allocation."""
    from rich.table import Table

    if res.get("stages"):
        t = Table("stage", "seconds", "summary")
        for name, s in res["stages"].items():
            t.add_row(name, f"{s.get('seconds', 0):.0f}", s.get("summary", ""))
        out.print(t)
    t = Table("level", "band", "technique", "status", "headline")
    for lv in res["levels"]:
        for it in lv["techniques"]:
            t.add_row(str(lv["level"]), lv["band"], it["name"], it["status"], it["headline"] or "")
    out.print(t)
    obs = (res.get("strategy") or {}).get("observations") or []
    for o in obs:
        mark = "applied" if o["applied"] else "not applied"
        out.print(f"evidence {o['id'] or o['metric']}: {mark}: {o['reason']}", highlight=False)
    alloc = (res.get("strategy") or {}).get("allocation")
    if alloc:
        top = sorted(range(10), key=lambda i: -alloc["allocation"][i])[:2]
        out.print(f"allocation: most to level {top[0] + 1} ({alloc['allocation'][top[0]]:.2f}), then level "
                  f"{top[1] + 1} ({alloc['allocation'][top[1]]:.2f}); EV {alloc['expected_value']:.3f}",
                  highlight=False)
