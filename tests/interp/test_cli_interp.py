"""`alignlab interp` end to end on the tiny random Llama: files, contracts and error lines."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from alignlab.cli import app

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus") / "c.jsonl"
    p.write_text("\n".join(json.dumps({"text": f"Sentence {i}: the cat sat on mat {i % 7} and then ran."})
                           for i in range(700)))
    return p


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model_dir, corpus):
    root = tmp_path_factory.mktemp("interp")
    spec = f"hf:{tiny_model_dir}"
    r = runner.invoke(app, ["interp", "capture", "--model", spec, "--layers", "1,2", "--corpus", str(corpus),
                            "--tokens", "20480", "--out", str(root / "acts"), "--context-len", "64"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["interp", "train-sae", "--acts", str(root / "acts"), "--out", str(root / "sae"),
                            "--width", "128", "--k", "8", "--batch-size", "256"])
    assert r.exit_code == 0, r.output
    return root, spec


def test_capture_and_train_write_one_saelens_sae_per_layer(pipeline):
    root, _ = pipeline
    meta = json.loads((root / "acts" / "meta.json").read_text())
    assert meta["layers"] == [1, 2] and meta["n_tokens"] >= 20480 and meta["complete"]
    for key in ("resid.1", "resid.2"):
        cfg = json.loads((root / "sae" / key / "cfg.json").read_text())
        assert cfg["d_sae"] == 128 and cfg["d_in"] == 64 and cfg["k"] == 8
        assert (root / "sae" / key / "sae_weights.safetensors").exists()


def test_eval_sae_writes_the_contract_keys(pipeline):
    root, _ = pipeline
    r = runner.invoke(app, ["interp", "eval-sae", "--sae", str(root / "sae"), "--acts", str(root / "acts"),
                            "--ce-contexts", "4"])
    assert r.exit_code == 0, r.output
    m = json.loads((root / "sae" / "resid.1" / "metrics.json").read_text())
    assert {"fvu", "l0", "dead_frac", "ce_score", "delta_ce_nats", "kl"} <= set(m)
    assert 0 <= m["fvu"] < 1 and m["l0"] == pytest.approx(8, abs=0.01) and m["kl"] >= 0


def test_autointerp_writes_results_latents_and_browser(pipeline):
    root, spec = pipeline
    r = runner.invoke(app, ["interp", "autointerp", "--sae", str(root / "sae"), "--key", "resid.2",
                            "--acts", str(root / "acts"), "--out", str(root / "ai"), "--explainer", spec,
                            "--scorer", spec, "--n-latents", "4", "--n-neurons", "3", "--n-random", "3",
                            "--tokens", "8192", "--n-detection", "3", "--n-negative", "3", "--n-fuzzing", "2"])
    assert r.exit_code == 0, r.output
    res = json.loads((root / "ai" / "results.json").read_text())
    assert {"detection_bal_acc", "fuzzing_bal_acc", "interpretable_frac", "baselines"} <= set(res)
    assert set(res["baselines"]) >= {"shuffled", "neurons", "random_sae"}
    rows = [json.loads(l) for l in (root / "ai" / "latents.jsonl").read_text().splitlines()]
    assert sorted({r["source"] for r in rows}) == ["neurons", "random_sae", "sae"]
    assert sum(r["source"] == "sae" for r in rows) == 4
    html = (root / "ai" / "report.html").read_text()
    assert "<html" in html and "http://" not in html.replace("http://www.w3.org", "")


def test_autointerp_names_the_keys_when_one_is_missing(pipeline):
    root, _ = pipeline
    r = runner.invoke(app, ["interp", "autointerp", "--sae", str(root / "sae"), "--key", "resid.9",
                            "--acts", str(root / "acts"), "--out", str(root / "x")])
    assert r.exit_code == 2 and "no SAE for key 'resid.9'; it holds resid.1, resid.2" in r.output


def test_autointerp_with_the_lexical_pair_needs_no_model_calls(pipeline):
    root, _ = pipeline
    r = runner.invoke(app, ["interp", "autointerp", "--sae", str(root / "sae" / "resid.1"),
                            "--acts", str(root / "acts"), "--out", str(root / "lex"), "--explainer", "lexical",
                            "--scorer", "lexical", "--n-latents", "6", "--n-neurons", "0", "--n-random", "4",
                            "--tokens", "8192"])
    assert r.exit_code == 0, r.output
    res = json.loads((root / "lex" / "results.json").read_text())
    assert res["explainer"] == "lexical" and res["scorer"] == "lexical"
    assert res["detection_bal_acc"]["n"] + res["counts"]["explainer_failures"] <= 6


def test_probe_and_steer_commands(pipeline, tmp_path):
    root, spec = pipeline
    data = tmp_path / "p.jsonl"
    data.write_text("\n".join(json.dumps({"text": ("qqq zzz " if i % 2 else "aaa eee ") * 3, "label": i % 2})
                              for i in range(40)))
    r = runner.invoke(app, ["interp", "probe", "--data", str(data), "--model", spec, "--layers", "1",
                            "--out", str(tmp_path / "probe")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "probe" / "results.json").read_text())
    assert res["layers"]["1"]["auroc"] == pytest.approx(1.0)
    r = runner.invoke(app, ["interp", "steer", "--model", spec, "--prompt", "hi", "--direction",
                            f"probe:{tmp_path / 'probe'}:1", "--coef", "50", "--max-new-tokens", "4"])
    assert r.exit_code == 0, r.output
    assert "unsteered:" in r.output and "coef +50" in r.output


@pytest.mark.parametrize("args, message", [
    (["capture", "--layers", "1,x", "--out", "o"], "not a comma list of integers"),
    (["train-sae", "--acts", "missing-dir", "--out", "o"], "no meta.json"),
    (["eval-sae", "--sae", ".", "--acts", "missing-dir"], "no meta.json"),
    (["steer", "--prompt", "p", "--direction", "nonsense"], "use sae:DIR:LATENT or probe:DIR:LAYER"),
    (["autointerp", "--sae", ".", "--acts", ".", "--out", "o"], "no cfg.json in it or in its sub-folders"),
])
def test_bad_input_is_one_clear_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["interp", *args])
    assert r.exit_code == 2 and message in r.output
