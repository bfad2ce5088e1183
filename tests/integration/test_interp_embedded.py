"""Slow: interpretability on the real embedded SmolLM2 (steering with a known effect; SAE pipeline)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from alignlab.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner(env={"COLUMNS": "200"})
SMOL = "embedded:smollm2-135m-instruct"

FRENCH = ["Je suis très content de te voir aujourd'hui.", "Le chat dort sur le canapé.",
          "Nous allons au marché demain matin.", "Il fait beau et chaud cet été.",
          "Elle lit un livre dans le jardin.", "Les enfants jouent dans le parc.",
          "Je voudrais un café, s'il vous plaît.", "La voiture est garée devant la maison."]
ENGLISH = ["I am very happy to see you today.", "The cat is sleeping on the sofa.",
           "We are going to the market tomorrow morning.", "The weather is nice and warm this summer.",
           "She is reading a book in the garden.", "The children are playing in the park.",
           "I would like a coffee, please.", "The car is parked in front of the house."]


@pytest.fixture(scope="module")
def smol():
    from alignlab.models.spec import load_model

    return load_model(SMOL)


def test_steering_along_a_french_minus_english_direction_shifts_the_reply_language(smol):
    from alignlab.interp.steer import diff_of_means, steer
    from alignlab.models.base import msg

    layer = 15
    d = diff_of_means(smol, FRENCH, ENGLISH, layer)  # built on texts that are not the scored replies
    conv = [msg("user", "Write one sentence about the weather.")]
    cands = [["Il fait très beau aujourd'hui.", "It is very sunny today."]]

    def gap():
        fr, en = smol.score([conv], cands)[0]
        return fr - en

    base = gap()
    with steer(smol, d, layer, float(d.norm())):
        towards = gap()
    with steer(smol, d, layer, -float(d.norm())):
        away = gap()
    # log p(French reply) - log p(English reply) moves with the sign of the coefficient
    assert away < base - 5 and towards > base + 5


def test_capture_train_eval_on_real_activations(tmp_path):
    acts, sae = tmp_path / "acts", tmp_path / "sae"
    r = runner.invoke(app, ["interp", "capture", "--model", SMOL, "--layers", "6", "--tokens", "61440",
                            "--transcripts", "0", "--out", str(acts)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["interp", "train-sae", "--acts", str(acts), "--out", str(sae), "--width", "1152",
                            "--k", "32", "--batch-size", "1024"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["interp", "eval-sae", "--sae", str(sae), "--acts", str(acts), "--ce-contexts", "8"])
    assert r.exit_code == 0, r.output
    m = json.loads((sae / "resid.6" / "metrics.json").read_text())
    # Held-out contexts only. Even this small SAE on 58k tokens explains most of the variance and
    # recovers most of the zero-ablation loss gap, at a positive raw CE cost.
    assert m["fvu"] < 0.35 and m["l0"] == pytest.approx(32, abs=0.5)
    assert m["ce_score"] > 0.5 and m["delta_ce_nats"] > 0 and m["kl"] > 0
