"""Persona drift: where the assistant sits on the assistant axis, turn by turn, in long conversations.

For each scripted conversation the user turns are sent one by one and the model's own replies stay
in the history. Each reply's response activation (mean block-``L`` output over its tokens) is
projected on the assistant axis and expressed on the scale "1 = the default assistant's mean,
0 = the mean of the role personas" (:meth:`AxisInfo.position`). Per conversation type: the mean
trajectory with a bootstrap band, and the drift (last turn minus first turn) with a CI. Attractors:
the conversations' final positions clustered in 1-D (k-means, k chosen by silhouette).

Runs resume: every finished conversation is one JSON line in ``DIR/drift_records.jsonl`` and a rerun
skips the ids already there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from alignlab.evals.persona_acts import Progress, generate_texts, response_activations
from alignlab.evals.persona_axis import SCALE, AxisInfo
from alignlab.evals.persona_data import DriftConversation
from alignlab.evals.persona_score import mean_ci
from alignlab.models.base import Message
from alignlab.models.whitebox import hf_parts

RECORDS_FILE = "drift_records.jsonl"


def _axis(axis_info: AxisInfo | str | Path) -> AxisInfo:
    return axis_info if isinstance(axis_info, AxisInfo) else AxisInfo.load(axis_info)


def read_records(path: Path, model: str, layer: int) -> dict[str, dict]:
    """Finished conversations already in ``path`` (a torn last line from a killed run is ignored).

    Raises:
        ValueError: the records were made with another model or layer (mixing them would be wrong).
    """
    from alignlab.store.jsonl import read_resumable_jsonl

    done: dict[str, dict] = {}
    for n, rec in read_resumable_jsonl(path, repair=True):  # a torn last line: that one runs again
        if rec.get("model") != model or rec.get("layer") != layer:
            raise ValueError(f"{path}: row {n} was made with {rec.get('model')} at layer {rec.get('layer')}, "
                             f"not {model} at layer {layer}; use another --out folder")
        done[str(rec["id"])] = rec
    return done


def run_conversations(model, axis: AxisInfo, conversations: Sequence[DriftConversation],
                      max_new_tokens: int = 48, on_turn=None) -> list[dict]:
    """Play the conversations together, turn by turn; one record per conversation."""
    sys_: list[Message] = ([{"role": "system", "content": axis.default_system}]
                           if axis.default_system else [])
    hist: list[list[Message]] = [list(sys_) for _ in conversations]
    ident = hf_parts(model)[0].identity
    recs = [{"id": c.id, "type": c.type, "model": ident, "layer": axis.layer, "positions": [],
             "pc": [], "turns": []} for c in conversations]
    for t in range(max(len(c.turns) for c in conversations)):
        live = [j for j, c in enumerate(conversations) if t < len(c.turns)]
        convs = [hist[j] + [{"role": "user", "content": conversations[j].turns[t]}] for j in live]
        texts = generate_texts(model, convs, max_new_tokens)
        acts = response_activations(model, convs, texts, [axis.layer])[axis.layer]
        pos, pc = axis.position(acts), axis.pc_coords(acts)
        for r, j in enumerate(live):
            recs[j]["positions"].append(float(pos[r]))
            recs[j]["pc"].append([float(pc[r, 0]), float(pc[r, 1])])
            recs[j]["turns"].append({"user": conversations[j].turns[t], "assistant": texts[r]})
            hist[j] = convs[r] + [{"role": "assistant", "content": texts[r]}]
        if on_turn:
            on_turn(len(live))
    return recs


def summarise_types(records: Sequence[dict], n_boot: int = 2000, seed: int = 0,
                    control: str = "task_control") -> dict[str, dict]:
    """Per conversation type: mean trajectory with a bootstrap band, drift (last - first) with a CI.

    When ``control`` conversations are present, each other type also gets ``drift_vs_control``: its
    drift minus the control type's (a longer history alone moves the position too), with an
    unpaired bootstrap CI.
    """
    from alignlab.stats import bootstrap_diff

    out: dict[str, dict] = {}
    for ctype in sorted({r["type"] for r in records}):
        rs = [r for r in records if r["type"] == ctype]
        mean, lo, hi, n_at = [], [], [], []
        for t in range(max(len(r["positions"]) for r in rs)):
            vals = [r["positions"][t] for r in rs if len(r["positions"]) > t]
            m, ci = mean_ci(vals, n_boot, seed)
            mean.append(m)
            lo.append(ci[0])
            hi.append(ci[1])
            n_at.append(len(vals))
        drift, drift_ci = mean_ci([r["positions"][-1] - r["positions"][0] for r in rs], n_boot, seed)
        out[ctype] = {"mean": mean, "lo": lo, "hi": hi, "drift": drift, "drift_ci": drift_ci,
                      "n": len(rs), "n_per_turn": n_at}
    drifts = {t: [r["positions"][-1] - r["positions"][0] for r in records if r["type"] == t] for t in out}
    if control in drifts:
        for ctype in out:
            if ctype != control:
                d, d_ci = bootstrap_diff(drifts[control], drifts[ctype], n_boot=n_boot, seed=seed)
                out[ctype]["drift_vs_control"], out[ctype]["drift_vs_control_ci"] = d, list(d_ci)
    return out


def final_position(positions: Sequence[float], last: int = 2) -> float:
    """Where a conversation settles: the mean position of its last ``last`` turns."""
    tail = list(positions)[-last:]
    return float(sum(tail) / len(tail))


def find_attractors(values: Sequence[float], ids: Sequence[str], types: Sequence[str], k_max: int = 4,
                    min_silhouette: float = 0.7, seed: int = 0) -> tuple[list[dict], dict]:
    """Cluster 1-D final positions: k-means for k = 2..k_max, the k with the best silhouette, and
    a single cluster when no k reaches ``min_silhouette`` (no clear separate attractors).

    The 0.7 default sits above what structureless spreads reach: evenly spaced points score 0.54-0.61
    at k = 2 (8 to 40 points) and samples of 10 Gaussian values up to about 0.63.

    Returns:
        ``(attractors sorted by centre, selection details)``; each attractor has its centre,
        member ids, a count per conversation type, and its spread (std).
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return [], {"k": 0, "silhouette": None, "rule": "no conversations"}
    labels = np.zeros(n, dtype=int)
    best_k, best_s = 1, None
    tried = {}
    if n >= 3 and np.ptp(x) > 0:
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score

        for k in range(2, min(k_max, n - 1) + 1):
            km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x[:, None])
            if len(set(km.labels_)) < k:
                continue
            s = float(silhouette_score(x[:, None], km.labels_))
            tried[k] = s
            if best_s is None or s > best_s:
                best_k, best_s, best_labels = k, s, km.labels_
        if best_s is not None and best_s >= min_silhouette:
            labels = best_labels
        else:
            best_k = 1
    groups = []
    for lab in sorted(set(labels.tolist()), key=lambda l: x[labels == l].mean()):
        idx = np.flatnonzero(labels == lab)
        counts: dict[str, int] = {}
        for i in idx.tolist():
            counts[types[i]] = counts.get(types[i], 0) + 1
        groups.append({"centre": float(x[idx].mean()), "members": [ids[i] for i in idx.tolist()],
                       "types": counts, "spread": float(x[idx].std())})
    rule = (f"k-means on the final positions (mean of the last 2 turns), k in 2..{k_max} by silhouette; "
            f"one cluster when the best silhouette is below {min_silhouette}")
    return groups, {"k": best_k if len(groups) > 1 else 1, "silhouette": best_s,
                    "silhouettes": {str(k): v for k, v in tried.items()}, "rule": rule}


def persona_drift(model, axis_info: AxisInfo | str | Path, conversations: Sequence[DriftConversation],
                  out_dir: str | Path, *, max_new_tokens: int = 48, chunk: int = 8,
                  on_progress: Progress | None = None, n_boot: int = 2000, seed: int = 0) -> dict:
    """Play scripted conversations, track each reply's position on the assistant axis, summarise.

    Args:
        model: an in-process HF model (the one the axis was made on).
        axis_info: an :class:`AxisInfo` or the path of a ``persona.json``.
        conversations: from :func:`load_drift`.
        out_dir: where ``drift_records.jsonl`` (resumable) and ``drift.json`` go.
        max_new_tokens: greedy reply length.
        chunk: conversations played together; each finished chunk is written before the next.
        on_progress: ``(phase, done, total)`` callback, counted in assistant turns.
        n_boot: bootstrap resamples.
        seed: seed of the bootstraps and the clustering.

    Returns:
        The ``drift.json`` dict.
    """
    t0 = time.time()
    hf, _, _ = hf_parts(model)
    axis = _axis(axis_info)
    axis.check_model(model)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / RECORDS_FILE
    done = read_records(rec_path, hf.identity, axis.layer)
    todo = [c for c in conversations if c.id not in done]
    total = sum(len(c.turns) for c in conversations)
    finished = [sum(len(c.turns) for c in conversations if c.id in done)]

    def tick(k: int) -> None:
        finished[0] += k
        if on_progress:
            on_progress("drift turns", finished[0], total)

    tick(0)
    for s in range(0, len(todo), chunk):
        recs = run_conversations(model, axis, todo[s:s + chunk], max_new_tokens, tick)
        with rec_path.open("a", encoding="utf-8") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")
                done[r["id"]] = r
    records = [done[c.id] for c in conversations]
    finals = [final_position(r["positions"]) for r in records]
    attractors, selection = find_attractors(finals, [r["id"] for r in records],
                                            [r["type"] for r in records], seed=seed)
    result = {
        "model": hf.identity, "layer": axis.layer, "scale": SCALE, "axis_model": axis.model,
        "conversations": [{"id": r["id"], "type": r["type"], "positions": r["positions"], "pc": r["pc"],
                           "final": f, "turns": r["turns"]} for r, f in zip(records, finals)],
        "by_type": summarise_types(records, n_boot, seed),
        "attractors": attractors, "attractor_selection": selection,
        "max_new_tokens": max_new_tokens, "n_resumed": len(conversations) - len(todo),
        "seconds": round(time.time() - t0, 1),
    }
    (out / "drift.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


__all__ = ["find_attractors", "final_position", "persona_drift", "read_records", "run_conversations",
           "summarise_types"]
