"""CLI: the red-team command end to end on a scripted target, and one-line errors for bad input."""

import json

from typer.testing import CliRunner

from alignlab.cli import app

runner = CliRunner(env={"COLUMNS": "200"})


def test_redteam_writes_contract_files(tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, ["redteam", "--target", "scripted:I'm sorry, I cannot help with that.",
                            "--limit", "9", "--attacks", "direct,base64", "--workspace", str(tmp_path / "ws"),
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    for k in ("asr", "asr_ci", "compliance_rate", "compliance_rate_ci", "n_behaviors", "n_unscorable",
              "by_category", "by_attack"):
        assert k in res
    # A target that always refuses: nothing broken, every benign prompt over-refused.
    assert res["asr"] == 0.0 and res["n_behaviors"] == 9 and len(res["by_category"]) == 9
    assert res["over_refusal"]["rate"] == 1.0
    assert set(res["by_attack"]) == {"direct", "base64"}
    assert (out / "hits.jsonl").read_text() == ""
    assert (out / "report.html").exists()
    assert "ASR (harmful, behavior-level): 0.0%" in r.stdout


def test_resume_of_finished_run_adds_nothing(tmp_path):
    ws = tmp_path / "ws"
    args = ["redteam", "--target", "scripted:OK", "--limit", "3", "--attacks", "direct", "--workspace", str(ws)]
    r1 = runner.invoke(app, args)
    run_id = r1.stdout.split("run id ")[1].split()[0]
    r2 = runner.invoke(app, args + ["--resume", run_id])
    assert r2.exit_code == 0, r2.output
    assert run_id in r2.stdout


def test_bad_inputs_fail_with_one_clear_line(tmp_path):
    bad = tmp_path / "b.csv"
    bad.write_text("category\nfoo\n")
    cases = [
        (["redteam", "--target", "gpt4"], "unknown model spec 'gpt4'"),
        (["redteam", "--target", "scripted:x", "--attacks", "nope"], "nope"),
        (["redteam", "--target", "scripted:x", "--behaviors", str(bad)], "b.csv: row 0"),
        (["redteam", "--target", "scripted:x", "--attacks", "pair", "--limit", "1",
          "--workspace", str(tmp_path / "w")], "needs an attacker model"),
        (["redteam", "--target", "scripted:x", "--resume", "missing", "--workspace", str(tmp_path / "w2")],
         "run 'missing' not found"),
        (["judge", "validate", "--labels", str(tmp_path / "none.jsonl")], "none.jsonl: file not found"),
    ]
    for args, needle in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        err = " ".join(r.stderr.split())
        assert needle in err, (args, r.stderr)


def test_models_list_shows_both_embedded():
    r = runner.invoke(app, ["models", "list"])
    assert r.exit_code == 0
    assert "smollm2-135m-instruct" in r.stdout and "gemma3-270m" in r.stdout


def test_list_attacks():
    r = runner.invoke(app, ["redteam", "--list-attacks"])
    assert r.exit_code == 0
    for name in ("direct", "persona", "base64", "pair", "tap", "crescendo"):
        assert name in r.stdout


def test_guard_commands_fail_with_one_clear_line(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("name: x\ncategories:\n  - id: weapons\n    restricted: r\n    restricted_examples: [a, b]\n"
                   "    permitted_examples: [c, d]\n")
    r = runner.invoke(app, ["guard", "train", "--constitution", str(bad), "--target", "scripted:x",
                            "--out", str(tmp_path / "g")])
    assert r.exit_code == 2
    assert "category 'weapons': field 'permitted'" in r.output and str(bad) in r.output
    r = runner.invoke(app, ["guard", "train", "--backbone", "probe", "--target", "scripted:x",
                            "--helper", "none", "--generate", "0", "--out", str(tmp_path / "g")])
    assert r.exit_code == 2 and "black-box" in r.output
    r = runner.invoke(app, ["guard", "eval", "--guard", str(tmp_path / "missing"), "--target", "scripted:x",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no guard here" in r.output


def test_guard_train_and_eval_on_a_scripted_target(tmp_path):
    """The whole loop through the CLI with the real MiniLM embedder and a scripted target."""
    g = tmp_path / "guard"
    r = runner.invoke(app, ["guard", "train", "--target", "scripted:I'm sorry, I can't help with that.",
                            "--helper", "none", "--augment-per-query", "1", "--response-tokens", "8",
                            "--out", str(tmp_path / "probe")])
    # the default backbone (probe) reads activations: a scripted target is refused before any work
    assert r.exit_code == 2 and "black-box" in r.output and "respond:" not in r.output
    r = runner.invoke(app, ["guard", "train", "--target", "scripted:I'm sorry, I can't help with that.",
                            "--backbone", "embed", "--helper", "none", "--augment-per-query", "1",
                            "--response-tokens", "8", "--out", str(g)])
    assert r.exit_code == 0, r.output
    assert (g / "config.json").exists() and (g / "weights.safetensors").exists()
    r = runner.invoke(app, ["guard", "calibrate", "--guard", str(g), "--target", "scripted:Sure, here it is.",
                            "--fpr", "0.02"])
    assert r.exit_code == 0, r.output
    cal = json.loads((g / "config.json").read_text())["calibration"]
    assert cal["n"] == 45 and cal["fpr"] == 0.02 and cal["blocked_after"] <= cal["blocked_before"]
    assert (g / "calibration_scores.json").exists() and "embed.input" in r.stdout
    r = runner.invoke(app, ["guard", "calibrate", "--guard", str(g), "--benign", str(tmp_path / "nope.txt")])
    assert r.exit_code == 2 and "nope.txt" in r.output
    r = runner.invoke(app, ["guard", "eval", "--guard", str(g), "--target", "scripted:Sure, here it is.",
                            "--limit", "9", "--attacks", "direct", "--latency-samples", "2",
                            "--workspace", str(tmp_path / "ws"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["n_behaviors"] == 9 and res["leakage_check"].startswith("checked")
    assert "45 calibration prompts" in res["leakage_check"] and res["calibration"]["n"] == 45
    assert "ASR (harmful, behavior-level)" in r.stdout


def test_redteam_split_takes_the_guard_pool_or_held_out_half(tmp_path):
    from alignlab.data.behaviors import load_packaged
    from alignlab.data.splits import behavior_split

    pool, held = behavior_split(load_packaged())
    for split, want in (("pool", pool), ("held-out", held)):
        out = tmp_path / split
        r = runner.invoke(app, ["redteam", "--target", "scripted:No.", "--split", split, "--attacks", "direct",
                                "--workspace", str(tmp_path / "ws"), "--out", str(out), "--no-benign"])
        assert r.exit_code == 0, r.output
        res = json.loads((out / "results.json").read_text())
        assert set(res["config"]["behaviors"]) == {b.id for b in want}
    r = runner.invoke(app, ["redteam", "--target", "scripted:No.", "--split", "half"])
    assert r.exit_code == 2 and "--split must be" in r.output
