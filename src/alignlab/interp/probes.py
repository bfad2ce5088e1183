"""Linear probes on a model's activations for any labelled text dataset.

Activations are block outputs (layer ``L`` = residual stream after block ``L``), read with forward
hooks in one pass that stops after the deepest layer, each text starting with BOS as in capture,
and pooled over tokens (mean, BOS excluded) or taken at the last token. The probe is the guard's
standardised logistic regression (:mod:`alignlab.heads`); it is fitted on a training
split and measured only on a held-out split (stratified by label, grouped by ``group`` when the
data has one), with accuracy (Wilson CI), AUROC (bootstrap CI) and the counts behind them.

Data files: JSONL rows ``{"text": ..., "label": 0|1|true|false, "group": optional, "split":
optional "train"|"test"}``; field names are options.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from alignlab.errors import AlignlabError
from alignlab.models.whitebox import check_layers, hf_parts, residuals

if TYPE_CHECKING:
    from alignlab.heads import LinearHead


class ProbeDataError(AlignlabError, ValueError):
    """A labelled data file that cannot be used."""


@dataclass
class LabelledText:
    text: str
    label: int
    group: str
    split: str | None = None


def load_labelled(path: str | Path, text_field: str = "text", label_field: str = "label",
                  group_field: str = "group") -> list[LabelledText]:
    """Rows of a JSONL file of labelled texts; one error line names the row and field."""
    path = Path(path)
    if not path.exists():
        raise ProbeDataError(f"{path}: no such file; give a JSONL file of {{\"{text_field}\", \"{label_field}\"}} rows")
    rows: list[LabelledText] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ProbeDataError(f"{path}, row {n}: not valid JSON ({e.msg})") from None
        text = obj.get(text_field)
        if not isinstance(text, str) or not text.strip():
            raise ProbeDataError(f"{path}, row {n}: field {text_field!r} is missing or empty "
                                 f"(name the text field with --text-field)")
        label = obj.get(label_field)
        if label in (True, False, 0, 1, "0", "1"):
            label = int(label in (True, 1, "1"))
        else:
            raise ProbeDataError(f"{path}, row {n}: field {label_field!r} is {label!r}; labels must be 0/1 "
                                 f"or true/false (name the label field with --label-field)")
        split = obj.get("split")
        if split not in (None, "train", "test"):
            raise ProbeDataError(f"{path}, row {n}: split is {split!r}; use train or test, or leave it out")
        rows.append(LabelledText(text, label, str(obj.get(group_field, f"row{n}")), split))
    if len({r.label for r in rows}) < 2:
        raise ProbeDataError(f"{path}: needs rows of both labels (0 and 1)")
    return rows


def token_activations(model, texts: Sequence[str], layers: Sequence[int], batch_size: int = 8,
                      max_tokens: int = 512) -> dict[int, list]:
    """Per-text ``[tokens, d]`` block outputs (BOS row dropped) at each layer, float32."""

    from alignlab.interp.capture import bos_id

    _, lm, tok = hf_parts(model)
    layers = check_layers(lm, layers)
    bos = bos_id(tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else bos
    seqs = [[bos] + tok(t, add_special_tokens=False)["input_ids"][:max_tokens - 1] for t in texts]
    return residuals(lm, seqs, layers, pad, batch_size, [(1, len(s)) for s in seqs])


def pooled_activations(model, texts: Sequence[str], layers: Sequence[int], pool: str = "mean",
                       batch_size: int = 8) -> dict[int, np.ndarray]:
    """``[n_texts, d]`` per layer: the mean over tokens (BOS excluded) or the last token."""
    if pool not in ("mean", "last"):
        raise ValueError(f"pool must be mean or last, not {pool!r}")
    acts = token_activations(model, texts, layers, batch_size=batch_size)
    return {l: np.stack([(a.mean(0) if pool == "mean" else a[-1]).numpy() for a in v])
            for l, v in acts.items()}


def split_rows(rows: Sequence[LabelledText], test_frac: float = 0.25, seed: int = 0) -> tuple[list[int], list[int]]:
    """Train/test row indices: the file's own ``split`` when every row has one, else a split of
    groups stratified by the labels they hold (rows sharing a group never straddle the split)."""
    if all(r.split for r in rows):
        train = [i for i, r in enumerate(rows) if r.split == "train"]
        test = [i for i, r in enumerate(rows) if r.split == "test"]
        if not train or not test:
            raise ProbeDataError("the data's split field needs both train and test rows")
        return train, test
    rng = random.Random(seed)
    labels_of: dict[str, set] = {}
    for r in rows:
        labels_of.setdefault(r.group, set()).add(r.label)
    held: set[str] = set()
    for kind in sorted({tuple(sorted(v)) for v in labels_of.values()}):
        groups = sorted(g for g, v in labels_of.items() if tuple(sorted(v)) == kind)
        rng.shuffle(groups)
        held |= set(groups[:max(1, round(len(groups) * test_frac))])
    train = [i for i, r in enumerate(rows) if r.group not in held]
    test = [i for i, r in enumerate(rows) if r.group in held]
    if not train or len({rows[i].label for i in test}) < 2:
        raise ProbeDataError("too few groups to hold out both labels; add rows or give a split field")
    return sorted(train), sorted(test)


def fit_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              c: float = 0.5, seed: int = 0) -> tuple[LinearHead, dict]:
    """Fit on train, measure on test: accuracy (Wilson CI), AUROC (bootstrap CI), counts."""
    from alignlab.heads import classifier_metrics, train_head
    from alignlab.stats import bootstrap_ci, wilson

    head = train_head(x_train, y_train, c=c, seed=seed)
    scores = head.score(x_test)
    m = classifier_metrics(y_test.tolist(), scores.tolist(), 0.5)
    correct = int(((scores > 0.5) == (y_test == 1)).sum())
    out = {"n_train": int(len(y_train)), "n_test": int(len(y_test)), "n_test_pos": int(y_test.sum()),
           "accuracy": correct / len(y_test), "accuracy_ci": list(wilson(correct, len(y_test))),
           "auroc": m.get("auroc"), "auprc": m.get("auprc"), "precision": m["precision"],
           "recall": m["recall"], "f1": m["f1"]}
    if m.get("auroc") is not None:
        from sklearn.metrics import roc_auc_score

        pairs = list(zip(y_test.tolist(), scores.tolist()))

        def auc(sample):
            ys = [p[0] for p in sample]
            return roc_auc_score(ys, [p[1] for p in sample]) if 0 < sum(ys) < len(ys) else m["auroc"]

        out["auroc_ci"] = list(bootstrap_ci(pairs, stat=auc, n_boot=500, seed=seed))
    return head, out


def direction_of(head) -> np.ndarray:
    """The probe's direction in raw activation space (coef / scale), for steering."""
    return (head.coef / head.scale).astype(np.float32)


def train_probes(model, rows: Sequence[LabelledText], layers: Sequence[int], pool: str = "mean",
                 c: float = 0.5, seed: int = 0, test_frac: float = 0.25,
                 batch_size: int = 8) -> tuple[dict[int, LinearHead], dict]:
    """One probe per layer on the same train/test split; returns heads and a results dict."""
    train, test = split_rows(rows, test_frac=test_frac, seed=seed)
    feats = pooled_activations(model, [r.text for r in rows], layers, pool=pool, batch_size=batch_size)
    y = np.array([r.label for r in rows])
    heads, per_layer = {}, {}
    for layer, x in feats.items():
        heads[layer], per_layer[str(layer)] = fit_probe(x[train], y[train], x[test], y[test], c=c, seed=seed)
    best = max(per_layer, key=lambda l: per_layer[l]["auroc"] or 0)
    return heads, {"layers": per_layer, "best_layer": int(best), "pool": pool, "n": len(rows),
                   "split": {"train": len(train), "test": len(test)},
                   "model": getattr(model, "identity", "?")}


def save_probes(heads: dict[int, LinearHead], results: dict, out: str | Path) -> Path:
    """Write probes.safetensors (head tensors and raw-space directions per layer) and results.json."""
    import torch
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for layer, head in heads.items():
        tensors.update(head.tensors(f"layer{layer}"))
        tensors[f"layer{layer}.direction"] = torch.tensor(direction_of(head))
    save_file(tensors, str(out / "probes.safetensors"))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return out
