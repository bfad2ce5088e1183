"""Slow: `alignlab lab --quick` on the real embedded SmolLM2, and its report in headless Chromium.

What it proves: the packaged quick config runs every stage on the real model; the loop's known
properties hold on it (the guard can only remove compliance; an SAE trained on its activations
reconstructs held-out tokens better than the mean; the ladder and scorecard reach the report page).
"""

import json

import pytest
from typer.testing import CliRunner

from alignlab.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner(env={"COLUMNS": "200"})


def test_quick_lab_on_smollm2_runs_every_stage_and_its_report_renders(tmp_path):
    out = tmp_path / "lab"
    r = runner.invoke(app, ["lab", "--quick", "--out", str(out), "--workspace", str(tmp_path / "ws")])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert list(res["stages"]) == ["redteam", "judges", "guard", "reattack", "evals", "interp", "strategy"]
    status = {t["technique"]: t["status"] for t in res["scorecard"]["techniques"]}
    assert status["constitutional_classifiers"] == status["sae_autointerp"] == "measured"
    g = json.loads((out / "reattack" / "results.json").read_text())
    # Same prompts, same greedy decoding: a guard can only turn replies into refusals.
    assert g["compliance_guarded"] <= g["compliance_unguarded"]
    assert g["adaptive"]["by_attack"]["pair"]["asr_rate"]["n"] == 3
    sae = json.loads(next((out / "interp" / "sae").glob("*/metrics.json")).read_text())
    assert 0 < sae["fvu"] < 1
    from alignlab.report import check_html_in_browser

    page = check_html_in_browser(out / "report.html")
    assert not page["console_errors"] and not page["page_errors"], page
