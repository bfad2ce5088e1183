"""``alignlab strategy``: outputs written and consistent, one-line errors, self-contained escaped SVG."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from alignlab.cli import app
from alignlab.report import strategy_plots as plots
from alignlab.strategy.allocate import allocate
from alignlab.strategy.allocate_config import load_allocation_config
from alignlab.strategy.evidence import update_prior
from alignlab.strategy.progress import ProgressInputs, progress_report

runner = CliRunner(env={"COLUMNS": "200"})


def _check_svg(text: str) -> ET.Element:
    root = ET.fromstring(text)  # well-formed: every text escaped
    assert root.tag.endswith("svg")
    assert "<script" not in text and "href=" not in text and "http://www.w3.org/2000/svg" in text
    return root


def test_allocate_writes_json_and_plots(tmp_path):
    out = tmp_path / "o"
    r = runner.invoke(app, ["strategy", "allocate", "--samples", "20", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "allocation.json").read_text())
    assert abs(sum(res["allocation"]) - res["inputs"]["budget"]) < 1e-9
    assert res["monte_carlo"]["samples"] == 20
    assert "expected value" in r.stdout and "E[P(success)]" in r.stdout and "E[harm]" in r.stdout
    assert "Sensitivity" in r.stdout and "budget B" in r.stdout
    for name in ("allocation.svg", "success.svg", "sensitivity.svg"):
        _check_svg((out / name).read_text())
    assert not (out / "prior_posterior.svg").exists()


def test_allocate_with_evidence_shows_the_update(tmp_path):
    out = tmp_path / "o"
    r = runner.invoke(app, ["strategy", "allocate", "--samples", "0", "--evidence",
                            "guard_broken_adaptive,sleeper_defect_persists", "--transfer", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "allocation.json").read_text())
    e = res["evidence"]
    assert [o["transfer"] for o in e["observations"]] == [1.0, 1.0]
    assert e["posterior"] == pytest.approx(update_prior(e["prior"], ["guard_broken_adaptive:1",
                                                                     "sleeper_defect_persists:1"])["posterior"])
    assert "prior → posterior" in r.stdout and "x under posterior" in r.stdout
    _check_svg((out / "prior_posterior.svg").read_text())


def test_progress_writes_json_and_plots(tmp_path):
    out = tmp_path / "p"
    r = runner.invoke(app, ["strategy", "progress", "--growth", "0.2,0.5", "--samples", "2000", "--out", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "progress.json").read_text())
    assert rep["growth_rates"] == [0.2, 0.5] and rep["historical_growth"] == 0.2
    s20, s50 = rep["scenarios"]
    assert s20["p_done_within"]["5"] < 0.02 and s20["p_done_within"]["10"] < 0.5 < s50["p_done_within"]["10"]
    assert rep["needed_growth"]["achievable"] and "needed growth for P = 50%" in r.stdout
    for name in ("progress_curves.svg", "completion_time.svg", "needed_growth.svg"):
        _check_svg((out / name).read_text())
    # repeating the option is the same as a comma list
    r2 = runner.invoke(app, ["strategy", "progress", "--growth", "0.2", "--growth", "50%", "--samples", "2000",
                             "--out", str(tmp_path / "p2")])
    assert r2.exit_code == 0, r2.output
    assert json.loads((tmp_path / "p2" / "progress.json").read_text())["scenarios"][1]["p_done_within"] == \
        s50["p_done_within"]


def test_progress_with_a_deadline_distribution(tmp_path):
    r = runner.invoke(app, ["strategy", "progress", "--deadlines", "lognormal:8:0.5", "--samples", "0",
                            "--target-probability", "0.8", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "progress.json").read_text())
    assert rep["scenarios"][0]["inputs"]["deadline"]["kind"] == "lognormal"
    assert rep["needed_growth"]["probability"] == 0.8


def test_bad_inputs_fail_with_one_clear_line(tmp_path):
    bad = tmp_path / "alloc.yaml"
    bad.write_text("prior: [0.5, 0.5]\ncost_scales: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n")
    cases = [
        (["strategy", "allocate", "--config", str(bad)], "alloc.yaml: prior: 10 weights needed (levels 1-10), got 2"),
        (["strategy", "allocate", "--config", str(tmp_path / "none.yaml")], "none.yaml: file not found"),
        (["strategy", "allocate", "--evidence", "nope"], "unknown evidence id 'nope'; known: guard_broken_adaptive"),
        (["strategy", "allocate", "--evidence", "guard_broken_adaptive", "--transfer", "2"],
         "--transfer must be in [0, 1], got 2"),
        (["strategy", "progress", "--done", "2"], "done: the fraction already done must be in (0, 1)"),
        (["strategy", "progress", "--growth", "fast"], "--growth: 'fast' is not a number"),
        (["strategy", "progress", "--deadline", "10", "--deadlines", "lognormal:10:0.5"],
         "give --deadline or --deadlines, not both"),
        (["strategy", "progress", "--deadlines", "lognormal:ten:0.5"], "deadline 'lognormal:ten:0.5' not understood"),
        (["strategy", "progress", "--target-probability", "1.5"], "target probability: must be in (0, 1)"),
    ]
    for args, needle in cases:
        r = runner.invoke(app, args + ["--out", str(tmp_path / "x")])
        assert r.exit_code == 2, (args, r.output)
        err = " ".join(r.stderr.split())
        assert needle in err, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) <= 2, r.stderr  # one message (rich may wrap it once)


def test_plots_escape_every_text():
    upd = update_prior([0.1] * 10, [])
    upd["observations"] = [{"id": "<script>&\"x\"", "transfer": 0.5}]
    svg = plots.prior_posterior_svg(upd)
    _check_svg(svg)
    assert "&lt;script&gt;&amp;" in svg


def test_plots_of_both_models_are_well_formed_without_bands():
    res = allocate(load_allocation_config(), samples=0)
    for svg in (plots.allocation_svg(res), plots.success_svg(res), plots.sensitivity_svg(res)):
        _check_svg(svg)
    rep = progress_report(ProgressInputs(done=0.05, growth=0.1), [0.1], target_probability=0.99, samples=0, cap=0.2)
    assert rep["needed_growth"]["growth"] is None
    root = _check_svg(plots.needed_growth_svg(rep))
    assert "no growth rate up to 20%/yr suffices" in "".join(root.itertext())
    _check_svg(plots.progress_curves_svg(rep))
    _check_svg(plots.completion_time_svg(rep))
