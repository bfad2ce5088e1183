"""``alignlab strategy allocate|progress``: the allocation model (with evidence) and the field-progress model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from alignlab.cli.common import Defaults, fail, out, user_errors

app = typer.Typer(help="Strategy models: allocate effort across the difficulty ladder; will the field "
                       "finish technical alignment before the deadline?", no_args_is_help=True)

DEFAULT_OUT = Path("strategy-out")
PROGRESS = Defaults("alignlab.strategy.progress:ProgressInputs")
REPORT = Defaults("alignlab.strategy.progress:progress_report")
DEFAULT_DEADLINE = "10"
"""A fixed deadline in years, as ``ProgressInputs.deadline`` (``fixed_deadline(10)``)."""


def _write(out_dir: Path, name: str, text: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / name).write_text(text)


def _rate(x: float) -> str:
    return f"{100 * x:.1f}%"


@app.command("allocate")
def allocate_cmd(
    config: Path | None = typer.Option(None, help="Allocation config YAML (default: the packaged "
                                                     "allocate_default.yaml)."),
    evidence: str | None = typer.Option(None, help="Observed evidence ids, comma list (ID or ID:W with its "
                                                      "own transfer weight); see strategy/files/evidence.yaml."),
    transfer: float | None = typer.Option(None, help="Transfer weight in [0, 1] for every observation "
                                                        "(likelihoods enter as L^w; default: the file's)."),
    evidence_file: Path | None = typer.Option(None, help="Evidence YAML replacing the packaged one."),
    samples: int | None = typer.Option(None, help="Monte Carlo samples (default: the config's; 0: none)."),
    seed: int | None = typer.Option(None, help="Monte Carlo seed (default: the config's)."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Where allocation.json and the SVG plots go."),
) -> None:
    """Optimal allocation of effort across the ten ladder techniques, its sensitivity and bands."""
    from alignlab.report import strategy_plots as plots
    from alignlab.strategy.allocate import allocate
    from alignlab.strategy.allocate_config import load_allocation_config
    from alignlab.strategy.evidence import Observation, allocate_with_evidence

    if samples is not None and samples < 0:
        fail(f"--samples must be >= 0, got {samples}")
    if transfer is not None and not 0.0 <= transfer <= 1.0:
        fail(f"--transfer must be in [0, 1], got {transfer:g}")
    with user_errors():
        cfg = load_allocation_config(config)
        if evidence:
            obs: list[Any] = [o.strip() for o in evidence.split(",") if o.strip()]
            if transfer is not None:
                obs = [Observation(o.partition(":")[0], transfer) for o in obs]
            res = allocate_with_evidence(cfg, obs, evidence_file, samples=samples, seed=seed)
        else:
            res = allocate(cfg, samples=samples, seed=seed)
    print_allocation(res)
    _write(out_dir, "allocation.json", json.dumps(res, indent=2))
    files = {"allocation.svg": plots.allocation_svg(res), "success.svg": plots.success_svg(res),
             "sensitivity.svg": plots.sensitivity_svg(res)}
    if "evidence" in res:
        files["prior_posterior.svg"] = plots.prior_posterior_svg(res["evidence"])
    for name, svg in files.items():
        _write(out_dir, name, svg)
    out.print(f"\nwrote {out_dir}/allocation.json, " + ", ".join(files), highlight=False, markup=False)


def print_allocation(res: dict[str, Any]) -> None:
    """Print an allocation result as rich tables."""
    from rich.table import Table

    B = res["inputs"]["budget"]
    mc = res.get("monte_carlo") or {}
    band = mc.get("allocation")
    upd = res.get("evidence")
    prior_col = "posterior" if upd else "prior"
    t = Table("level", "technique", prior_col, "cost scale", "allocation", "share",
              "5-95% (re-opt.)", "readiness", "P(success|D)", "harm(D)",
              title=f"Optimal allocation of a budget of {B:g}")
    for d, row in enumerate(res["levels"]):
        b = f"{band['p5'][d]:.2f}-{band['p95'][d]:.2f}" if band else ""
        t.add_row(str(row["level"]), row["name"], _rate(row["prior"]),
                  "never ready" if row["cost_scale"] is None else f"{row['cost_scale']:g}",
                  f"{row['allocation']:.2f}", _rate(row["share"]), b, _rate(row["readiness"]),
                  _rate(row["p_success_given_D"]), f"{row['harm_given_D']:.3f}")
    out.print(t)
    bl = res["baselines"]
    out.print(f"expected value {res['expected_value']:.4f} = E[P(success)] {res['expected_p_success']:.4f} "
              f"- E[harm] {res['expected_harm']:.4f}  (harm weight h = {res['inputs']['harm_weight']:g})",
              highlight=False, markup=False)
    out.print(f"baselines: uniform over 1-9 {bl['uniform_1_to_9']:.4f}, uniform over 1-10 "
              f"{bl['uniform_all_10']:.4f}, best single technique (level {bl['best_single']['level']}) "
              f"{bl['best_single']['ev']:.4f}", highlight=False, markup=False)
    if mc:
        e = mc["ev_chosen"]
        line = (f"Monte Carlo over {mc['samples']} input samples (seed {mc['seed']}): EV of this allocation "
                f"{e['p50']:.4f} [5-95%: {e['p5']:.4f}, {e['p95']:.4f}]")
        if "ev_reoptimised" in mc:
            r, g = mc["ev_reoptimised"], mc["regret"]
            line += (f"; re-optimised per sample {r['p50']:.4f} [{r['p5']:.4f}, {r['p95']:.4f}], "
                     f"EV lost by not knowing the inputs: median {g['p50']:.4f}")
        out.print(line, highlight=False, markup=False)
    if res["sensitivity"]:
        step = res["inputs"]["sensitivity_step"]
        s = Table("rank", "input", "value", f"dEV at -{step:.0%}", f"dEV at +{step:.0%}", "budget moved (-/+)",
                  title="Sensitivity: each input moved, allocation re-optimised (largest effect first)")
        for i, r in enumerate(res["sensitivity"][:12], 1):
            s.add_row(str(i), r["label"], f"{r['value']:.4g}", f"{r['dev_low']:+.4f}", f"{r['dev_high']:+.4f}",
                      f"{r['shift_low']:.1%} / {r['shift_high']:.1%}")
        out.print(s)
    if upd:
        names = [o["id"] for o in upd["observations"]]
        u = Table("level", "prior", *[f"BF {n} (w={o['transfer']:g})" for n, o in zip(names, upd["observations"])],
                  "posterior", "x under prior", "x under posterior", title="Evidence: prior → posterior")
        for d in range(10):
            bfs = [f"{o['bayes_factors'][d]:.2f}" for o in upd["observations"]]
            u.add_row(str(d + 1), _rate(upd["prior"][d]), *bfs,
                      _rate(upd["posterior"][d]), f"{upd['allocation_under_prior'][d]:.2f}",
                      f"{upd['allocation_under_posterior'][d]:.2f}")
        out.print(u)
        out.print(f"EV under the posterior: {upd['ev_under_posterior']:.4f} with the re-optimised allocation, "
                  f"{upd['ev_prior_allocation_under_posterior']:.4f} keeping the prior's "
                  f"(prior's own EV {upd['ev_under_prior']:.4f})", highlight=False)


def _growths(values: list[str]) -> list[float]:
    rates: list[float] = []
    for v in values:
        for part in (x.strip() for x in v.split(",")):
            if not part:
                continue
            try:
                rates.append(float(part.rstrip("%")) / (100 if part.endswith("%") else 1))
            except ValueError:
                fail(f"--growth: {part!r} is not a number (rates are fractions: 0.2 = 20%/yr; "
                     "repeat the option or give a comma list)")
    return rates


@app.command("progress")
def progress_cmd(
    done: float = typer.Option(PROGRESS.done, help="Fraction of technical alignment already done (median)."),
    done_factor: float = typer.Option(PROGRESS.done_factor, help="×/÷ factor of that fraction's 90% interval."),
    growth: list[str] = typer.Option([], help="Growth of the field's effort per year from now (0.2 = 20%); "
                                              f"repeatable or a comma list (default {PROGRESS.growth:g})."),
    historical_growth: float | None = typer.Option(PROGRESS.historical_growth,
                                                      help="Growth that produced the work so far "
                                                           "(default: the first --growth)."),
    ai_multiplier: float = typer.Option(PROGRESS.ai_multiplier, help="Today's AI-assistance multiplier m0 (1 = none)."),
    ai_growth: float = typer.Option(PROGRESS.ai_growth, help="Yearly growth of the AI multiplier."),
    ai_cap: float | None = typer.Option(PROGRESS.ai_cap, help="Upper bound of the AI multiplier."),
    deadline: str | None = typer.Option(None, help=f"Fixed deadline in years (default {DEFAULT_DEADLINE}), or a "
                                                      "spec as --deadlines takes."),
    deadlines: str | None = typer.Option(None, help="Deadline distribution: lognormal:MEDIAN:SIGMA or "
                                                       "points:5=0.3,10=0.5,20=0.2."),
    target_probability: float = typer.Option(REPORT.target_probability,
                                             help="Probability of done-before-deadline the needed growth rate "
                                                  "must reach."),
    growth_cap: float = typer.Option(REPORT.cap, help="Highest growth rate the needed-growth search tries."),
    samples: int = typer.Option(REPORT.samples, help="Monte Carlo samples of the cross-check (0: none)."),
    seed: int = typer.Option(REPORT.seed, help="Seed of the cross-check."),
    out_dir: Path = typer.Option(DEFAULT_OUT, "--out", help="Where progress.json and the SVG plots go."),
) -> None:
    """Will technical alignment be done before the deadline, and what growth of the field would it take?"""
    from rich.table import Table

    from alignlab.report import strategy_plots as plots
    from alignlab.strategy.progress import ProgressInputs, parse_deadline, progress_report

    if deadline is not None and deadlines is not None:
        fail("give --deadline or --deadlines, not both")
    if samples < 0:
        fail(f"--samples must be >= 0, got {samples}")
    rates = _growths(growth) or [PROGRESS.growth]
    with user_errors():
        dl = parse_deadline(deadlines or deadline or DEFAULT_DEADLINE)
        inp = ProgressInputs(done=done, done_factor=done_factor, growth=rates[0],
                             historical_growth=historical_growth, ai_multiplier=ai_multiplier,
                             ai_growth=ai_growth, ai_cap=ai_cap, deadline=dl)
        rep = progress_report(inp, rates, target_probability, samples=samples, seed=seed, cap=growth_cap)
    first = rep["scenarios"][0]["inputs"]
    out.print(f"{done:.0%} done (90% interval {done / done_factor:.1%}-{min(1, done * done_factor):.1%}), past "
              f"growth {rep['historical_growth']:.0%}/yr, AI multiplier {first['ai_multiplier']:g} growing "
              f"{first['ai_growth']:.0%}/yr" + (f" up to {ai_cap:g}" if ai_cap else "")
              + f", deadline {dl.spec}", highlight=False)
    horizons = list(rep["scenarios"][0]["p_done_within"])
    t = Table("growth/yr", "P(done before deadline)", "Monte Carlo check", *[f"P(within {h}y)" for h in horizons],
              "median T (years)", "90% interval of T", title="Field progress")
    for s in rep["scenarios"]:
        q, m = s["completion_time"], s["monte_carlo"]
        fmt = lambda v: "never" if v is None else f"{v:.1f}"  # noqa: E731
        t.add_row(_rate(s["inputs"]["growth"]), _rate(s["p_done_by_deadline"]),
                  f"{_rate(m['p_done_by_deadline'])} ± {_rate(m['se'])}" if m else "",
                  *[_rate(s["p_done_within"][h]) for h in horizons], fmt(q["p50"]), f"{fmt(q['p5'])}-{fmt(q['p95'])}")
    out.print(t)
    ng = rep["needed_growth"]
    out.print(f"needed growth for P = {target_probability:.0%}: {ng['message']}", highlight=False)
    _write(out_dir, "progress.json", json.dumps(rep, indent=2))
    files = {"progress_curves.svg": plots.progress_curves_svg(rep),
             "completion_time.svg": plots.completion_time_svg(rep),
             "needed_growth.svg": plots.needed_growth_svg(rep)}
    for name, svg in files.items():
        _write(out_dir, name, svg)
    out.print(f"\nwrote {out_dir}/progress.json, " + ", ".join(files), highlight=False, markup=False)
