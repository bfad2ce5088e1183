"""Train a guard from a built dataset: fit heads on train, calibrate on val, measure on test."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from alignlab.guard.data import SPLITS, Example
from alignlab.guard.guard import BACKBONES, Guard
from alignlab.heads import LinearHead, classifier_metrics, threshold_at_fpr, train_head

PLAIN_SOURCES = ("constitution", "helper", "paraphrase", "borderline", "pool")
PREFIX_FRACTIONS = (0.25, 0.5, 1.0)
"""Response prefixes (by words) added as output-classifier training rows."""


@dataclass
class TrainConfig:
    """How to fit and calibrate a guard."""

    backbone: str = "probe"
    """embed | probe | cascade (probe: linear probes on the target's own activations, the measured
    default; embed works on black-box targets)."""
    fpr: float = 0.01
    """Target false-positive rate on benign validation data, per classifier."""
    chunk_tokens: int = 16
    """Streaming output checks every this many generated tokens."""
    layers: tuple[int, ...] = ()
    """Hidden-state layers for probes (default: 1/3, 1/2, 2/3 depth)."""
    c: float = 0.05
    """Inverse L2 strength of the logistic heads (features are standardised)."""
    cascade_recall: float = 0.98
    """The cascade passes without escalation only below the score keeping this recall."""
    seed: int = 0


def _plain(e: Example) -> bool:
    return e.source in PLAIN_SOURCES or e.source.startswith("run:") and e.label == 0


def _prefixes(text: str, fractions=PREFIX_FRACTIONS) -> list[str]:
    w = text.split()
    return [" ".join(w[:max(1, round(len(w) * f))]) for f in fractions] if w else [text]


def cross_fit(x: np.ndarray, y: np.ndarray, row_unit: np.ndarray, unit_group: Sequence[str],
              unit_fit: np.ndarray, unit_score: Callable[[LinearHead, np.ndarray], np.ndarray],
              c: float, seed: int, k: int = 5) -> tuple[LinearHead, np.ndarray, np.ndarray]:
    """Fit a head on the fit units' rows, with out-of-fold scores for calibration.

    Rows (feature vectors) belong to units (an example, or a response scored over its streaming
    prefixes). Fit units are split into ``k`` folds by group, so near-duplicates share a fold;
    each fold is scored by a head trained on the other folds. Returns the head fitted on all fit
    units, the out-of-fold scores (NaN outside the fit units) and the final head's scores.
    """
    n_units = len(unit_group)
    fold = np.array([int(hashlib.sha256(f"{seed}|{g}".encode()).hexdigest(), 16) % k for g in unit_group])
    oof = np.full(n_units, np.nan)
    for f in range(k):
        tr = unit_fit[row_unit] & (fold[row_unit] != f)
        units = np.where(unit_fit & (fold == f))[0]
        if len(units) == 0 or len(set(y[tr].tolist())) < 2:
            continue
        oof[units] = unit_score(train_head(x[tr], y[tr], c, seed), units)
    head = train_head(x[unit_fit[row_unit]], y[unit_fit[row_unit]], c, seed)
    return head, oof, unit_score(head, np.arange(n_units))


def _threshold(oof: np.ndarray, mask: np.ndarray, fpr: float, what: str) -> float:
    vals = oof[mask & ~np.isnan(oof)]
    if len(vals) < 5:
        raise ValueError(f"calibrating the {what} head needs benign examples; got {len(vals)}: "
                         f"give the constitution more permitted examples")
    return threshold_at_fpr(vals, fpr)


def train_guard(examples: Sequence[Example], config: TrainConfig, target=None,
                progress: Callable[[str, int, int], None] | None = None) -> Guard:
    """Fit the heads ``config.backbone`` needs on train+val; calibrate out-of-fold; test on test.

    Thresholds are set on out-of-fold scores of permitted examples (5 group folds over train and
    val), so calibration uses every permitted example without scoring one with a head that saw it.
    The test split is touched only to report metrics.

    Args:
        examples: output of :func:`alignlab.guard.data.build_dataset` (with splits).
        config: backbone, target false-positive rate and head settings.
        target: the in-process HF target (needed for ``probe`` and ``cascade``).
        progress: ``(phase, done, total)`` callback.
    """
    if config.backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {config.backbone!r}")
    t0 = time.time()
    ex = list(examples)
    split = np.array([e.split for e in ex])
    y = np.array([e.label for e in ex])
    plain = np.array([_plain(e) for e in ex])
    groups = [e.group for e in ex]
    fit = split != "test"
    te = split == "test"
    with_resp = [i for i, e in enumerate(ex) if e.response is not None and e.response_label is not None]
    notes: list[str] = []
    if with_resp and len({ex[i].response_label for i in with_resp if split[i] != "test"}) < 2:
        notes.append("no output or exchange classifier: every training response had the same label "
                     "(the responder refused, or complied, with everything)")
        with_resp = []
    wr = np.array(with_resp, dtype=int)
    ry = np.array([ex[i].response_label for i in with_resp])
    heads: dict[str, LinearHead] = {}
    metrics: dict[str, Any] = {}
    bands: dict[str, list[float]] = {}
    oofs: dict[str, np.ndarray] = {}
    finals: dict[str, np.ndarray] = {}

    def step(phase: str, i: int, n: int) -> None:
        if progress:
            progress(phase, i, n)

    def fit_input(x: np.ndarray, key: str) -> None:
        head, oof, s = cross_fit(x, y, np.arange(len(ex)), groups, fit, lambda h, u: h.score(x[u]),
                                 config.c, config.seed)
        # Calibrate on plain permitted requests (what benign traffic looks like); wrapped
        # permitted requests (a jailbreak template around a harmless ask) are reported apart.
        head.threshold = _threshold(oof, fit & (y == 0) & plain, config.fpr, key)
        heads[key], oofs[key], finals[key] = head, oof, s
        metrics[key] = classifier_metrics(y[te], s[te], head.threshold)
        metrics[key + ".plain"] = classifier_metrics(y[te & plain], s[te & plain], head.threshold)
        metrics[key + ".wrapped"] = classifier_metrics(y[te & ~plain], s[te & ~plain], head.threshold)

    def fit_output(rows_x: np.ndarray, row_unit: np.ndarray, key: str,
                   stream: Callable[[LinearHead, np.ndarray], np.ndarray]) -> None:
        """Units are responses; each scores as the max over its streaming checks."""
        head, oof, s = cross_fit(rows_x, ry[row_unit], row_unit, [groups[i] for i in wr],
                                 fit[wr], stream, config.c, config.seed)
        head.threshold = _threshold(oof, fit[wr] & (y[wr] == 0), config.fpr, key)
        heads[key], oofs[key], finals[key] = head, oof, s
        metrics[key] = classifier_metrics(ry[te[wr]], s[te[wr]], head.threshold)

    if config.backbone in ("embed", "cascade"):
        from alignlab.guard.features import Embedder, stream_cuts

        emb = Embedder()
        step("embed inputs", 0, len(ex))
        xin = emb.input_features([e.conversation for e in ex])
        step("embed inputs", len(ex), len(ex))
        fit_input(xin, "embed.input")
        if with_resp:
            rows, owner = [], []
            for u, i in enumerate(with_resp):
                for p in _prefixes(ex[i].response or ""):
                    rows.append(p)
                    owner.append(u)
            streams = [stream_cuts(ex[i].response or "", config.chunk_tokens)[1] for i in with_resp]
            flat = [p for st in streams for p in st]
            # Training prefixes and streaming prefixes overlap (the full reply is in both):
            # embed each distinct text once.
            distinct = list(dict.fromkeys(rows + flat))
            step("embed responses", 0, len(distinct))
            vec = emb.output_features(distinct)
            at = {t: k for k, t in enumerate(distinct)}
            rx = vec[[at[t] for t in rows]]
            fx = vec[[at[t] for t in flat]]
            step("embed responses", len(distinct), len(distinct))
            offs = np.cumsum([0] + [len(st) for st in streams])

            def embed_stream(h: LinearHead, units: np.ndarray) -> np.ndarray:
                return np.array([h.score(fx[offs[u]:offs[u + 1]]).max() for u in units])

            fit_output(rx, np.array(owner), "embed.output", embed_stream)
            xex = emb.exchange_features([ex[i].conversation for i in with_resp],
                                        [ex[i].response or "" for i in with_resp])
            head, oof, s = cross_fit(xex, ry, np.arange(len(wr)), [groups[i] for i in wr], fit[wr],
                                     lambda h, u: h.score(xex[u]), config.c, config.seed)
            head.threshold = _threshold(oof, fit[wr] & (y[wr] == 0), config.fpr, "embed.exchange")
            heads["embed.exchange"] = head
            metrics["embed.exchange"] = classifier_metrics(ry[te[wr]], s[te[wr]], head.threshold)

    layers: tuple[int, ...] = ()
    if config.backbone in ("probe", "cascade"):
        if target is None:
            raise ValueError(f"backbone {config.backbone!r} reads the target's activations: pass --target")
        from alignlab.guard.features import ActivationFeatures

        af = ActivationFeatures(target, config.layers or None)
        layers = af.layers
        # Rows with a response give their input features from the same pass as their response's.
        step("probe features", 0, len(ex))
        xin = np.zeros((len(ex), af.dim), np.float32)
        rest = sorted(set(range(len(ex))) - set(with_resp))
        if rest:
            xin[rest] = af.input_features([ex[i].conversation for i in rest])
        if with_resp:
            xin[with_resp], per = af.input_and_output_features(
                [ex[i].conversation for i in with_resp], [ex[i].response or "" for i in with_resp],
                config.chunk_tokens)
        step("probe features", len(ex), len(ex))
        fit_input(xin, "probe.input")
        if with_resp:
            dim = xin.shape[1]
            per = [p if len(p) else np.zeros((1, dim), np.float32) for p in per]
            rx = np.concatenate(per)
            row_owner = np.array([u for u, p in enumerate(per) for _ in range(len(p))])
            offs = np.cumsum([0] + [len(p) for p in per])

            def probe_stream(h: LinearHead, units: np.ndarray) -> np.ndarray:
                sc = h.score(rx)
                return np.array([sc[offs[u]:offs[u + 1]].max() for u in units])

            fit_output(rx, row_owner, "probe.output", probe_stream)
        if config.backbone == "cascade":
            for stage, lab, unit_fit, unit_te in (("input", y, fit, te),
                                                  *((("output", ry, fit[wr], te[wr]),) if with_resp else ())):
                hi = heads[f"probe.{stage}"].threshold
                oof = oofs[f"probe.{stage}"]
                pos = oof[unit_fit & (lab == 1) & ~np.isnan(oof)]
                lo = float(np.quantile(pos, 1 - config.cascade_recall)) if len(pos) else hi
                bands[stage] = [min(lo, hi), hi]
                metrics[f"cascade.{stage}"] = _cascade_metrics(
                    finals[f"probe.{stage}"][unit_te], finals[f"embed.{stage}"][unit_te], lab[unit_te],
                    bands[stage], heads[f"embed.{stage}"].threshold)
    guard = Guard(backbone=config.backbone, heads=heads, chunk_tokens=config.chunk_tokens,
                  layers=layers, target=target.identity if target is not None else None, bands=bands)
    data_hash = hashlib.sha256("\n".join(sorted(e.id for e in ex)).encode()).hexdigest()
    guard.config = {
        "guard_id": f"{config.backbone}-{data_hash[:10]}",
        "train_config": asdict(config),
        "metrics": metrics,
        "train_seconds": round(time.time() - t0, 1),
        "notes": notes,
        "data": {"n": len(ex), "sha256": data_hash,
                 "by_split": {s: {"restricted": int(((split == s) & (y == 1)).sum()),
                                  "permitted": int(((split == s) & (y == 0)).sum())} for s in SPLITS},
                 "with_response": len(with_resp)},
    }
    return guard


def _cascade_metrics(probe: np.ndarray, embed: np.ndarray, y: np.ndarray, band: list[float],
                     embed_thr: float) -> dict[str, Any]:
    """Operating-point metrics of the cascade on test units, and how often it escalates."""
    lo, hi = band
    unsure = (probe > lo) & (probe <= hi)
    blocked = (probe > hi) | (unsure & (embed > embed_thr))
    m = classifier_metrics(y, blocked.astype(float), 0.5)
    for k in ("roc", "pr", "auroc", "auprc", "tpr_at_1pct_fpr"):
        m.pop(k, None)
    m["escalated"] = int(unsure.sum())
    m["escalation_rate"] = float(unsure.mean()) if len(unsure) else None
    return m


def pool_seeds(pool) -> list[tuple[str, int, str, str]]:
    """Training requests from pool-half behaviors: each behavior restricted, its benign
    counterpart permitted (``(category, label, text, "pool")``)."""
    return [(b.category, 1, b.behavior, "pool") for b in pool] + \
        [(b.category, 0, b.benign, "pool") for b in pool if b.benign]


def build_and_train(
    constitution,
    out_dir,
    data_config,
    train_config: TrainConfig,
    helper=None,
    responder=None,
    target=None,
    run_examples: Sequence[Example] = (),
    from_runs: Sequence[str] = (),
    progress: Callable[[str, int, int], None] | None = None,
    hard_negatives: Sequence[tuple[str, str]] = (),
    pool_behaviors: bool = False,
) -> Guard:
    """Constitution → dataset → guard directory (``config.json``, ``weights.safetensors``, ``data.jsonl``).

    The packaged behaviors' evaluation half and the borderline set are passed to the dataset
    build as evaluation texts, so nothing that will be measured is generated from or trained on.
    ``hard_negatives`` (category, prompt) are harmless requests near the boundary added as
    permitted training examples (and to the out-of-fold threshold calibration); borderline prompts
    given here leave the evaluation texts (pass only the borderline set's calibration half, so
    its evaluation half stays unseen). ``pool_behaviors`` adds every behavior of the packaged
    pool half (the half guards may learn from) as a restricted request and its benign
    counterpart as a permitted one.
    """
    from pathlib import Path

    from alignlab.data.behaviors import load_packaged
    from alignlab.data.splits import behavior_split, load_borderline
    from alignlab.guard.data import build_dataset, eval_texts_of, write_jsonl
    from alignlab.guard.features import check_probe_target

    if train_config.backbone in ("probe", "cascade"):
        check_probe_target(target)  # before any data is built
    pool, held = behavior_split(load_packaged())
    negs = {p for _, p in hard_negatives}
    eval_texts = [*eval_texts_of(held), *(p for _, _, p in load_borderline() if p not in negs)]
    seeds = [(c, 0, p, "borderline") for c, p in hard_negatives]
    if pool_behaviors:
        seeds += pool_seeds(pool)
    examples = build_dataset(constitution, helper, responder, data_config, eval_texts, run_examples,
                             progress, extra_seeds=seeds)
    guard = train_guard(examples, train_config, target, progress)
    guard.refusal_message = constitution.refusal_message
    guard.config.update({
        "constitution": constitution.to_dict(),
        "augment_attacks": list(data_config.augment_attacks),
        "data_config": asdict(data_config),
        "from_runs": list(from_runs),
        "helper": helper.identity if helper is not None else None,
        "responder": responder.identity if responder is not None else None,
        "held_out_behaviors": sorted(b.id for b in held),
        "by_source": _count_sources(examples),
        "hard_negatives": len(hard_negatives),
        "pool_behaviors": len(pool) if pool_behaviors else 0,
    })
    out = Path(out_dir)
    from alignlab.guard.calibrate import SCORES_FILE

    (out / SCORES_FILE).unlink(missing_ok=True)  # scores of an earlier guard in this directory
    guard.save(out)
    write_jsonl(examples, out / "data.jsonl")
    return guard


def _count_sources(examples: Sequence[Example]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in examples:
        k = e.source.split(":")[0] if e.source.startswith("run:") else e.source
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))
