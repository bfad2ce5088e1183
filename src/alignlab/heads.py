"""Linear heads on guard features: training, calibration to a false-positive rate, metrics.

A head is standardisation plus logistic regression (scikit-learn), stored as plain tensors in
safetensors so loading it needs no pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class LinearHead:
    """p(restricted) = sigmoid(((x - mean) / scale) . coef + intercept)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float = 0.5
    """Block when the probability is above this (set at training by ``threshold_at_fpr``)."""

    def score(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 1:
            x = x[None]
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def tensors(self, prefix: str) -> dict[str, Any]:
        import torch

        return {f"{prefix}.mean": torch.tensor(self.mean, dtype=torch.float32),
                f"{prefix}.scale": torch.tensor(self.scale, dtype=torch.float32),
                f"{prefix}.coef": torch.tensor(self.coef, dtype=torch.float32),
                f"{prefix}.intercept": torch.tensor([self.intercept], dtype=torch.float32)}

    @classmethod
    def from_tensors(cls, t: dict[str, Any], prefix: str, threshold: float) -> LinearHead:
        return cls(mean=t[f"{prefix}.mean"].numpy(), scale=t[f"{prefix}.scale"].numpy(),
                   coef=t[f"{prefix}.coef"].numpy(), intercept=float(t[f"{prefix}.intercept"][0]),
                   threshold=threshold)


def train_head(x: np.ndarray, y: np.ndarray, c: float = 0.5, seed: int = 0) -> LinearHead:
    """Standardise, then fit an L2 logistic regression with balanced class weights."""
    from sklearn.linear_model import LogisticRegression

    if len(set(y.tolist())) < 2:
        raise ValueError("a guard head needs both restricted and permitted training examples")
    mean = x.mean(0)
    scale = x.std(0) + 1e-6
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
    lr.fit((x - mean) / scale, y)
    return LinearHead(mean=mean.astype(np.float32), scale=scale.astype(np.float32),
                      coef=lr.coef_[0].astype(np.float32), intercept=float(lr.intercept_[0]))


def threshold_at_fpr(benign_scores: Sequence[float], fpr: float) -> float:
    """The smallest threshold t with #(benign > t) / n <= fpr."""
    s = np.sort(np.asarray(benign_scores, dtype=np.float64))
    if len(s) == 0:
        raise ValueError("threshold calibration needs benign examples in the validation split")
    allowed = int(np.floor(fpr * len(s)))
    return float(s[len(s) - 1 - allowed]) if allowed < len(s) else 0.0


def classifier_metrics(y: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float,
                       curve_points: int = 60) -> dict[str, Any]:
    """Precision, recall, F1 at the threshold; AUROC, AUPRC; TPR at 1% FPR; ROC and PR curves."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    from alignlab.stats import wilson

    yt = np.asarray(y, dtype=int)
    sc = np.asarray(scores, dtype=float)
    pred = sc > threshold
    tp = int((pred & (yt == 1)).sum())
    fp = int((pred & (yt == 0)).sum())
    fn = int((~pred & (yt == 1)).sum())
    tn = int((~pred & (yt == 0)).sum())
    prec = tp / (tp + fp) if tp + fp else None
    rec = tp / (tp + fn) if tp + fn else None
    f1 = 2 * prec * rec / (prec + rec) if prec and rec else 0.0 if prec is not None and rec is not None else None
    out: dict[str, Any] = {
        "n": len(yt), "n_pos": int(yt.sum()), "n_neg": int((yt == 0).sum()), "threshold": threshold,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": prec, "recall": rec, "f1": f1,
        "recall_ci": list(wilson(tp, tp + fn)) if tp + fn else None,
        "fpr": fp / (fp + tn) if fp + tn else None,
        "fpr_ci": list(wilson(fp, fp + tn)) if fp + tn else None,
    }
    if 0 < yt.sum() < len(yt):
        fpr_c, tpr_c, _ = roc_curve(yt, sc)
        out["auroc"] = float(roc_auc_score(yt, sc))
        out["auprc"] = float(average_precision_score(yt, sc))
        out["tpr_at_1pct_fpr"] = float(np.max(tpr_c[fpr_c <= 0.01])) if np.any(fpr_c <= 0.01) else 0.0
        p_c, r_c, _ = precision_recall_curve(yt, sc)
        out["roc"] = _thin(list(zip(fpr_c.tolist(), tpr_c.tolist())), curve_points)
        out["pr"] = _thin(list(zip(r_c.tolist(), p_c.tolist())), curve_points)
    return out


def _thin(points: list[tuple[float, float]], k: int) -> list[list[float]]:
    if len(points) <= k:
        return [[round(a, 4), round(b, 4)] for a, b in points]
    idx = np.linspace(0, len(points) - 1, k).round().astype(int)
    return [[round(points[i][0], 4), round(points[i][1], 4)] for i in idx]
