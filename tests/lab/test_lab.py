"""The lab loop end to end on the tiny random Llama: contract, resume, crash + resume, config errors.

What these prove: the loop runs every stage and the scorecard marks exactly the techniques alignlab can
measure as measured; a finished lab resumes to the same results without re-running stages; a lab killed
in a stage resumes from that stage and ends with the same measurements as an uninterrupted run; a bad
config fails with one line naming the field.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from alignlab.cli import app
from alignlab.lab import LabConfigError, LabError, config_from_dict, load_lab_config, run_lab
from alignlab.store import Workspace

runner = CliRunner(env={"COLUMNS": "200"})

MEASURED = {"baseline", "automated_redteaming", "constitutional_classifiers", "ai_judges", "behavioural_evals",
            "sae_autointerp", "activation_probes"}
NOT_IN_ALIGNLAB = {"preference_training", "weak_to_strong", "debate", "auditing_agents", "model_organisms", "theory"}


def tiny_config(model_dir, **over) -> dict:
    cfg = {
        "target": f"hf:{model_dir}",
        "redteam": {"limit": 9, "attacks": ["direct", "persona"], "max_new_tokens": 8},
        "guard": {"backbone": "probe", "augment_per_query": 1, "response_tokens": 8},
        "reattack": {"limit": 9, "attacks": ["direct", "persona"], "adaptive": ["pair"], "adaptive_limit": 3,
                     "adaptive_budget": 2, "max_new_tokens": 8, "borderline": 9, "latency_samples": 1},
        "evals": {"limit": 2, "max_new_tokens": 8, "max_steps": 2},
        "interp": {"tokens": 8192, "transcripts": 2, "batch_size": 64, "ce_contexts": 2, "n_latents": 8,
                   "n_neurons": 4, "n_random": 4, "context_tokens": 4096},
        "strategy": {"samples": 10},
    }
    cfg.update(over)
    return cfg


def _measures(res: dict) -> dict:
    """Every measurement but wall-clock overhead (timing differs from run to run)."""
    return {t["technique"]: [(m["label"], m["value"], m["k"], m["n"]) for m in t["measures"]
                             if "overhead" not in m["label"]]
            for t in res["scorecard"]["techniques"]}


@pytest.fixture(scope="module")
def lab(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    ws = Workspace(root / "ws")
    cfg = config_from_dict(tiny_config(tiny_model_dir))
    res = run_lab(cfg, ws, root / "out", log=lambda s: None)
    return root, ws, cfg, res


def test_every_stage_runs_and_the_scorecard_marks_what_alignlab_measures(lab):
    root, ws, _, res = lab
    assert list(res["stages"]) == ["redteam", "judges", "guard", "reattack", "evals", "interp", "strategy"]
    status = {t["technique"]: t["status"] for t in res["scorecard"]["techniques"]}
    assert {t for t, s in status.items() if s == "measured"} == MEASURED
    assert {t for t, s in status.items() if s == "not in alignlab"} == NOT_IN_ALIGNLAB
    on_disk = json.loads((root / "out" / "results.json").read_text())
    assert on_disk["run_id"] == res["run_id"] and (root / "out" / "report.html").exists()
    for t in res["scorecard"]["techniques"]:  # every link points at a file next to the report
        if t["report"]:
            assert (root / "out" / t["report"]).exists(), t["report"]


def test_every_measured_rate_has_counts_and_a_ci_inside_0_1(lab):
    for t in lab[3]["scorecard"]["techniques"]:
        for m in t["measures"]:
            if m["unit"] == "rate" and m["k"] is not None:
                assert 0 <= m["k"] <= m["n"] and m["value"] == pytest.approx(m["k"] / m["n"])
                lo, hi = m["ci"]
                assert 0 <= lo <= m["value"] <= hi <= 1


def test_the_ladder_flags_evidence_exactly_at_the_levels_of_measured_techniques(lab):
    res = lab[3]
    from alignlab.strategy.ladder import TECHNIQUES

    expect = {lv for t in TECHNIQUES if t.id in MEASURED for lv in t.levels}
    got = {lv["level"] for lv in res["levels"] if lv["has_evidence"]}
    assert got == expect and len(res["levels"]) == 10
    assert [lv["band"] for lv in res["levels"]] == ["easy"] * 3 + ["intermediate"] * 4 + ["hard"] * 3


def test_the_lab_leaves_no_run_marked_running(lab):
    _, ws, _, _ = lab
    assert {r.status for r in ws.runs()} == {"done"}


def test_strategy_observations_are_listed_with_reasons_and_the_update_is_shown(lab):
    s = lab[3]["strategy"]
    by = {o["metric"]: o for o in s["observations"]}
    assert by["judge_kappa"]["applied"] and by["judge_kappa"]["id"] == "judge_human_disagree"
    assert not by["adaptive_asr"]["applied"] and "50" in by["adaptive_asr"]["reason"]
    assert not by["sycophancy_rate"]["applied"] and "preference-trained" in by["sycophancy_rate"]["reason"]
    ev = s["allocation"]["evidence"]
    assert [o["id"] for o in ev["observations"]] == ["judge_human_disagree"]
    assert ev["prior"] != ev["posterior"] and sum(ev["posterior"]) == pytest.approx(1)


def test_rerunning_a_finished_lab_resumes_without_running_stages(lab, monkeypatch):
    root, ws, cfg, res = lab
    from alignlab.lab import runner as lab_runner

    def boom(ctx):
        raise AssertionError("a finished stage ran again")

    for name in lab_runner.STAGE_FUNCS:
        monkeypatch.setitem(lab_runner.STAGE_FUNCS, name, boom)
    again = run_lab(cfg, ws, root / "out", log=lambda s: None)
    assert again["run_id"] == res["run_id"] and _measures(again) == _measures(res)


def test_another_config_in_the_same_out_folder_is_refused(lab):
    root, ws, cfg, _ = lab
    other = config_from_dict({**cfg.model_dump(), "seed": 1})
    with pytest.raises(LabError, match="different config"):
        run_lab(other, ws, root / "out", log=lambda s: None)


def test_a_lab_killed_in_a_stage_resumes_there_and_ends_with_the_same_measurements(lab, tmp_path, monkeypatch,
                                                                                    tiny_model_dir):
    from alignlab.lab import runner as lab_runner

    ws = Workspace(tmp_path / "ws")
    cfg = config_from_dict(tiny_config(tiny_model_dir))
    real_evals = lab_runner.STAGE_FUNCS["evals"]

    def killed(ctx):
        raise KeyboardInterrupt("killed in evals")

    monkeypatch.setitem(lab_runner.STAGE_FUNCS, "evals", killed)
    with pytest.raises(KeyboardInterrupt):
        run_lab(cfg, ws, tmp_path / "out", log=lambda s: None)
    ran = []
    for name, fn in list(lab_runner.STAGE_FUNCS.items()):
        f = real_evals if name == "evals" else fn
        monkeypatch.setitem(lab_runner.STAGE_FUNCS, name, lambda ctx, f=f, name=name: (ran.append(name), f(ctx))[1])
    res = run_lab(cfg, ws, tmp_path / "out", log=lambda s: None)
    assert ran == ["evals", "interp", "strategy"]
    assert _measures(res) == _measures(lab[3])


def test_config_errors_are_one_line_naming_the_field(tmp_path):
    bad = tmp_path / "lab.yaml"
    bad.write_text("redteam:\n  limit: lots\n")
    with pytest.raises(LabConfigError, match=r"lab\.yaml: redteam\.limit: .*integer"):
        load_lab_config(bad)
    bad.write_text("stages: [redteam, dance]\n")
    with pytest.raises(LabConfigError, match=r"stages: unknown \['dance'\]"):
        load_lab_config(bad)
    bad.write_text("stages: [redteam, reattack]\n")
    with pytest.raises(LabConfigError, match="add 'guard'"):
        load_lab_config(bad)
    bad.write_text("targte: hf:x\n")
    with pytest.raises(LabConfigError, match="targte"):
        load_lab_config(bad)
    r = runner.invoke(app, ["lab", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "targte" in r.output and len(r.output.strip().splitlines()) == 1


def test_packaged_configs_are_valid_and_the_quick_one_is_smaller():
    d, q = load_lab_config(), load_lab_config(quick=True)
    assert q.redteam.limit < d.redteam.limit and q.interp.tokens < d.interp.tokens
    assert d.target == q.target == "embedded:smollm2-135m-instruct"


def test_report_command_builds_the_lab_report_from_a_workspace(lab, tmp_path):
    root, *_ = lab
    r = runner.invoke(app, ["report", str(root / "ws"), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert {t["technique"] for t in res["scorecard"]["techniques"] if t["status"] == "measured"} == MEASURED
    assert (tmp_path / "rep" / "report.html").exists()


def test_report_of_a_workspace_with_only_a_red_team_marks_the_rest_not_run(tmp_path):
    ws = Workspace(tmp_path / "ws")
    out = tmp_path / "rt"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"target": "x", "by_attack": {"direct": {
        "compliance": {"rate": 0.5, "ci": [0.2, 0.8], "k": 2, "n": 4, "n_unscorable": 0},
        "asr": {"rate": 0.0, "ci": [0.0, 0.6], "k": 0, "n": 4, "n_unscorable": 0}}},
        "behavior_compliance": {"rate": 0.5, "ci": [0.2, 0.8], "k": 2, "n": 4, "n_unscorable": 0}}))
    ws.log_result("redteam", {"target": "x"}, {}, out)
    r = runner.invoke(app, ["report", str(tmp_path / "ws"), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    status = {t["technique"]: t["status"] for t in res["scorecard"]["techniques"]}
    assert status["baseline"] == "measured" and status["automated_redteaming"] == "measured"
    assert status["constitutional_classifiers"] == "not run" and status["sae_autointerp"] == "not run"


def test_report_without_a_workspace_fails_with_one_line(tmp_path):
    r = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "no workspace" in r.output
