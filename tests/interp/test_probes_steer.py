"""Probes, steering and the CE splice: known answers on the tiny random Llama."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alignlab.interp.capture import CaptureConfig, capture
from alignlab.interp.corpus import Doc
from alignlab.interp.probes import ProbeDataError, load_labelled, split_rows, train_probes
from alignlab.interp.splice import ce_metrics
from alignlab.interp.steer import steer


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from alignlab.models.hf import HFModel

    return HFModel(str(tiny_model_dir), name="tiny")


def _rows(tmp_path, labels):
    import random

    rng = random.Random(0)
    lines = []
    for i, lab in enumerate(labels):
        letters = "qxz" if lab else "aei"
        text = " ".join("".join(rng.choice(letters) for _ in range(4)) for _ in range(6))
        lines.append(json.dumps({"text": text, "label": lab, "group": f"g{i // 4}"}))
    p = tmp_path / "probe.jsonl"
    p.write_text("\n".join(lines))
    return p


def test_probe_separates_a_property_present_in_activations(tiny, tmp_path):
    rows = load_labelled(_rows(tmp_path, [i % 2 for i in range(80)]))
    heads, res = train_probes(tiny, rows, [1, 3], seed=0)
    for layer in ("1", "3"):
        r = res["layers"][layer]
        assert r["auroc"] == pytest.approx(1.0) and r["accuracy"] >= 0.9
        assert r["n_train"] + r["n_test"] == 80 and r["auroc_ci"][0] <= r["auroc"] <= r["auroc_ci"][1]


def test_probe_on_random_labels_is_near_chance_on_held_out(tiny, tmp_path):
    rng = np.random.default_rng(1)
    p = tmp_path / "rand.jsonl"
    # the texts carry one letter set for both labels: nothing to find, so held-out AUROC ~ 0.5
    p.write_text("\n".join(json.dumps({"text": f"item {i} " + "abc " * (i % 5 + 1), "label": int(rng.integers(2))})
                           for i in range(120)))
    _, res = train_probes(tiny, load_labelled(p), [2], seed=0)
    assert 0.25 <= res["layers"]["2"]["auroc"] <= 0.75


def test_split_keeps_groups_whole_and_labels_stratified(tmp_path):
    rows = load_labelled(_rows(tmp_path, [i % 2 for i in range(60)]))
    train, test = split_rows(rows, test_frac=0.25, seed=3)
    assert not {rows[i].group for i in train} & {rows[i].group for i in test}
    assert {rows[i].label for i in test} == {0, 1}


def test_labelled_data_errors_name_row_and_field(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"text": "a", "label": 1}) + "\n" + json.dumps({"text": "b", "label": "yes"}))
    with pytest.raises(ProbeDataError, match=r"bad.jsonl, row 2: field 'label' is 'yes'"):
        load_labelled(p)
    p.write_text(json.dumps({"txt": "a", "label": 1}))
    with pytest.raises(ProbeDataError, match=r"row 1: field 'text' is missing"):
        load_labelled(p)


def _logit_gap(tiny, a, b):
    import torch

    ids = torch.tensor([[tiny.tokenizer.bos_token_id] + tiny.tokenizer("hello", add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        logits = tiny.model(input_ids=ids).logits[0, -1]
    return float(logits[a] - logits[b])


def test_steering_along_an_unembedding_difference_moves_that_logit_gap(tiny):
    import torch

    w = tiny.model.lm_head.weight.detach()
    a, b = 10, 20
    direction = (w[a] - w[b]) / tiny.model.model.norm.weight.detach()
    base = _logit_gap(tiny, a, b)
    gaps = {}
    for coef in (-200.0, -20.0, 20.0, 200.0):
        with steer(tiny, direction, 3, coef):
            gaps[coef] = _logit_gap(tiny, a, b)
    assert gaps[-200.0] < gaps[-20.0] < base < gaps[20.0] < gaps[200.0]
    assert _logit_gap(tiny, a, b) == pytest.approx(base)  # the hook is gone after the block
    with pytest.raises(ValueError, match="hidden size is 64"):
        with steer(tiny, torch.ones(3), 1, 1.0):
            pass


class IdentitySAE:
    def encode(self, x):
        return x

    def decode(self, z):
        return z


class ZeroSAE(IdentitySAE):
    def decode(self, z):
        return z * 0


def test_ce_splice_known_answers(tiny, tmp_path):
    docs = [Doc(f"text number {i} " * 30, "t") for i in range(60)]
    store = capture(tiny, docs, tmp_path / "acts", CaptureConfig(layers=(1,), tokens=32 * 45, context_len=32))
    ident = ce_metrics(tiny, IdentitySAE(), 1, store, n_contexts=4)
    assert ident["ce_contexts"] == 2  # 45 contexts: held-out are indices 19 and 39
    assert ident["ce_spliced"] == pytest.approx(ident["ce_clean"], abs=1e-5)
    assert ident["kl"] == pytest.approx(0.0, abs=1e-5) and ident["delta_ce_nats"] == pytest.approx(0.0, abs=1e-5)
    zero = ce_metrics(tiny, ZeroSAE(), 1, store, n_contexts=4)
    assert zero["ce_spliced"] == pytest.approx(zero["ce_zero"], abs=1e-5) and zero["kl"] > 0
    # a random model may not be hurt by zero-ablation; the score is only defined when it is
    gap = zero["ce_zero"] - zero["ce_clean"]
    assert (zero["ce_score"] == pytest.approx(0.0, abs=1e-4)) if gap > 0 else zero["ce_score"] is None
    assert math.isclose(zero["delta_ce_nats"], zero["ce_zero"] - zero["ce_clean"], abs_tol=1e-6)
