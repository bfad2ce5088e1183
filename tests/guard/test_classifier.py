"""Heads, calibration and metrics on synthetic features with known answers."""

from __future__ import annotations

import numpy as np

from alignlab.guard.guard import Guard, load_guard
from alignlab.heads import classifier_metrics, threshold_at_fpr, train_head


def test_threshold_at_fpr_bounds_the_false_positive_rate():
    rng = np.random.default_rng(0)
    for n, fpr in ((100, 0.01), (250, 0.05), (7, 0.1), (1000, 0.0)):
        s = rng.random(n)
        t = threshold_at_fpr(s, fpr)
        assert (s > t).mean() <= fpr
        assert (s >= t).mean() > fpr or t == s.min()  # the smallest such threshold


def test_head_separates_and_metrics_count_correctly():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (200, 5)), rng.normal(3, 1, (200, 5))])
    y = np.array([0] * 200 + [1] * 200)
    h = train_head(x, y)
    m = classifier_metrics(y, h.score(x), 0.5)
    assert m["auroc"] > 0.99 and m["tp"] + m["fn"] == 200 and m["fp"] + m["tn"] == 200
    m2 = classifier_metrics([1, 1, 0, 0], [0.9, 0.2, 0.8, 0.1], 0.5)
    assert (m2["tp"], m2["fp"], m2["fn"], m2["tn"]) == (1, 1, 1, 1)
    assert m2["precision"] == 0.5 and m2["recall"] == 0.5


def test_guard_directory_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 4))
    y = (x[:, 0] > 0).astype(int)
    h = train_head(x, y)
    h.threshold = 0.7
    g = Guard(backbone="embed", heads={"embed.input": h}, chunk_tokens=8, config={"guard_id": "g1"})
    g.save(tmp_path / "g")
    g2 = load_guard(tmp_path / "g")
    assert g2.id == "g1" and g2.chunk_tokens == 8 and g2.heads["embed.input"].threshold == 0.7
    np.testing.assert_allclose(g2.heads["embed.input"].score(x), h.score(x), rtol=1e-5)


def test_load_guard_errors_are_one_line(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="no guard here"):
        load_guard(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not an alignlab guard"):
        load_guard(tmp_path)
