"""``alignlab redteam``: behaviors x attacks on a target, judged."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from alignlab.cli.common import (
    REDTEAM,
    batch_size_option,
    ci,
    concurrency_option,
    console,
    judge_mode_option,
    judge_option,
    no_cache_option,
    out,
    pct,
    progress,
    quiet_hf,
    resume_option,
    save,
    target_option,
    user_errors,
    workspace_option,
)


def redteam(
    target: str = target_option(),
    attacker: str | None = typer.Option(None, help="Attacker model spec for pair/tap/crescendo."),
    judge: str = judge_option(),
    judge_mode: str = judge_mode_option(),
    behaviors: Path | None = typer.Option(None, help="HarmBench/JailbreakBench CSV or prompt file."),
    attacks: str = typer.Option("templates", help="Comma list, or all / templates / llm."),
    categories: str | None = typer.Option(None, help="Comma list of categories to keep."),
    limit: int | None = typer.Option(None, help="Behaviors to use, stratified by category."),
    split: str = typer.Option("all", help="all, pool (the half guards may train on) or held-out "
                                          "(the half guard eval measures on)."),
    budget: int = typer.Option(REDTEAM.budget, help="Target queries per attack and behavior."),
    seed: int = typer.Option(REDTEAM.seed),
    max_new_tokens: int = typer.Option(REDTEAM.max_new_tokens, help="Target reply length."),
    batch_size: int = batch_size_option(),
    concurrency: int = concurrency_option(),
    workspace: Path = workspace_option(),
    out_dir: Path | None = typer.Option(None, "--out", help="Where results go (default: the run's artifacts)."),
    resume: str | None = resume_option(),
    no_cache: bool = no_cache_option(),
    no_benign: bool = typer.Option(not REDTEAM.benign, "--no-benign", help="Skip the over-refusal check."),
    list_attacks: bool = typer.Option(False, "--list-attacks", help="List attacks and exit."),
) -> None:
    """Red-team a target: behaviors x attacks, judged, with ASR and 95% CIs, hits and a report."""
    from rich.table import Table

    from alignlab.redteam.attacks import get_attacks
    from alignlab.redteam.attacks import list_attacks as known_attacks

    if list_attacks:
        t = Table("name", "kind", "needs attacker", "description")
        for a in known_attacks():
            t.add_row(a["name"], a["kind"], "yes" if a["needs_attacker"] else "no", a["description"])
        out.print(t)
        return
    quiet_hf()
    from alignlab.data import filter_behaviors, load_behaviors
    from alignlab.judges.harm import make_judge
    from alignlab.models import load_model
    from alignlab.redteam.engine import RedteamConfig, run_redteam
    from alignlab.store import Workspace

    with user_errors(ValueError):
        bs = load_behaviors(behaviors)
        if split != "all":
            from alignlab.data.splits import behavior_split

            if split not in ("pool", "held-out"):
                raise ValueError(f"--split must be all, pool or held-out, not {split!r}")
            bs = behavior_split(bs)[0 if split == "pool" else 1]
        bs = filter_behaviors(bs, categories.split(",") if categories else None, limit, seed)
        atk = get_attacks(attacks)
    ws = Workspace(workspace)
    cache = None if no_cache else ws.root / "completions.sqlite"
    opts = {"batch_size": batch_size, "concurrency": concurrency}
    with user_errors(RuntimeError, FileNotFoundError, ValueError):
        tgt = load_model(target, cache=cache, **opts)
        att = load_model(attacker, cache=cache, **opts) if attacker else None
        jdg = make_judge(judge, cache=cache, judge_mode=judge_mode, **opts)
    cfg = RedteamConfig(budget=budget, seed=seed, max_new_tokens=max_new_tokens, benign=not no_benign,
                        extra={"target_spec": target, "attacker_spec": attacker, "judge_spec": judge,
                               "behaviors_file": str(behaviors) if behaviors else "packaged"})
    console.print(f"red-team: {len(bs)} behaviors x {len(atk)} attacks on {target} "
                  f"(judge {jdg.name}, budget {budget})")
    with progress("attack streams") as on_progress, user_errors(ValueError):
        res = run_redteam(tgt, jdg, bs, atk, ws, cfg, attacker=att, resume=resume,
                          out_dir=out_dir, on_progress=on_progress)
    print_summary(res)
    where = save(res)
    out.print(f"\nrun id {res['run_id']}  ->  {where}/results.json, hits.jsonl, report.html")


def print_summary(res: Mapping[str, Any]) -> None:
    """Print a red-team run's results: the headline rates and one row per attack."""
    from rich.table import Table

    b = res["behavior_asr"]
    c = res["behavior_compliance"]
    out.print(f"\nASR (harmful, behavior-level): {pct(res['asr'])} {ci(res['asr_ci'])}  "
              f"{b['k']}/{b['n']} behaviors, {res['n_unscorable']} unscorable")
    out.print(f"attempted compliance:          {pct(res['compliance_rate'])} "
              f"{ci(res['compliance_rate_ci'])}  {c['k']}/{c['n']}")
    a = res["attempt_asr"]
    out.print(f"attempt-level ASR:             {pct(a['rate'])} {ci(a['ci'])}  {a['k']}/{a['n']}, "
              f"{a['n_unscorable']} unscorable")
    if res.get("over_refusal"):
        o = res["over_refusal"]
        out.print(f"over-refusal on benign:        {pct(o['rate'])} {ci(o['ci'])}  {o['k']}/{o['n']}")
    t = Table("attack", "kind", "ASR", "95% CI", "k/n", "unscorable", "compliance", "queries/success")
    for name, r in res["by_attack"].items():
        qps = r["queries_per_success"]
        t.add_row(name, r["kind"], pct(r["asr"]["rate"]), ci(r["asr"]["ci"]),
                  f"{r['asr']['k']}/{r['asr']['n']}", str(r["asr"]["n_unscorable"]),
                  pct(r["compliance"]["rate"]), "n/a" if qps is None else f"{qps:.1f}")
    out.print(t)
    if res.get("judge_caveat"):
        console.print(f"[yellow]judge caveat:[/] {res['judge_caveat']}", highlight=False)
