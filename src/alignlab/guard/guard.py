"""A trained guard: classifier heads, their thresholds, and how they combine.

Backbones:
* ``embed``: heads on MiniLM embeddings (input, streaming output, exchange). Works with any target.
* ``probe``: heads on the target's own activations (input, streaming output). White-box targets.
* ``cascade``: the probe decides when it is confident; scores in its uncertain band go to the
  embedding head. The band is calibrated on validation data: above ``hi`` (the probe's threshold
  at the target false-positive rate) blocks, at or below ``lo`` (where the probe keeps 98% recall
  on restricted validation items) passes, anything between is escalated.

A guard directory holds ``config.json`` (thresholds, layers, data manifest, test-split metrics)
and ``weights.safetensors`` (the heads).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignlab.heads import LinearHead
from alignlab.models.base import Message

FORMAT = "alignlab-guard"
BACKBONES = ("embed", "probe", "cascade")


@dataclass
class Decision:
    """What a guard decided for one request or response."""

    blocked: bool = False
    by: str | None = None
    """input | output | exchange (which classifier fired)."""
    stage: str | None = None
    """probe | embed (which backbone made the call)."""
    score: float | None = None
    threshold: float | None = None
    at_token: int | None = None
    """Response tokens generated before a streaming block (0 for input blocks)."""
    unit: str | None = None
    """``words`` when a black-box reply was checked after the fact (``at_token`` counts words)."""
    escalated: int = 0
    """How many checks the cascade passed to the embedding head."""
    error: str | None = None
    """A guard error; the guard then fails closed (blocks)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Guard:
    """Heads plus the settings that say how to apply them."""

    backbone: str
    heads: dict[str, LinearHead]
    """Keys ``embed.input``, ``embed.output``, ``embed.exchange``, ``probe.input``, ``probe.output``."""
    refusal_message: str = "I can't help with that request."
    chunk_tokens: int = 16
    """Streaming output checks run every this many generated tokens."""
    layers: tuple[int, ...] = ()
    target: str | None = None
    """Identity of the model whose activations the probes read."""
    bands: dict[str, list[float]] = field(default_factory=dict)
    """Cascade bands per stage: ``[lo, hi]`` on the probe's score."""
    config: dict[str, Any] = field(default_factory=dict)
    """Everything else recorded at training (data manifest, metrics, constitution)."""
    path: str = ""
    _embedder: Any = field(default=None, repr=False)

    # ------------------------------------------------------------------ parts
    @property
    def uses_probe(self) -> bool:
        return self.backbone in ("probe", "cascade")

    @property
    def uses_embed(self) -> bool:
        return self.backbone in ("embed", "cascade")

    @property
    def embedder(self):
        if self._embedder is None:
            from alignlab.guard.features import Embedder

            self._embedder = Embedder()
        return self._embedder

    def has(self, key: str) -> bool:
        return key in self.heads

    def check_target(self, target) -> None:
        """Raise unless ``target`` can feed this guard: probes need the in-process model they
        were trained on (WhiteBoxRequired for a black-box one, ValueError for another model)."""
        if not self.uses_probe:
            return
        from alignlab.models.base import WhiteBoxRequired
        from alignlab.models.hf import HFModel

        if not isinstance(target, HFModel):
            raise WhiteBoxRequired(f"a {self.backbone} guard reads the target's activations; "
                                   f"{target.identity} is black-box: give the embedded:/hf: model it "
                                   f"was trained on, or use an embed guard")
        if self.target and self.target != target.identity:
            raise ValueError(f"this guard's probes were trained on {self.target}, not "
                             f"{target.identity}; use that model, or retrain with --target for this one")

    @property
    def id(self) -> str:
        return self.config.get("guard_id", "guard")

    # ------------------------------------------------------------------ decisions
    def decide_embed(self, stage: str, feats: np.ndarray) -> list[Decision]:
        head = self.heads[f"embed.{stage}"]
        scores = head.score(feats)
        return [Decision(blocked=bool(s > head.threshold), by=stage if s > head.threshold else None,
                         stage="embed", score=float(s), threshold=head.threshold) for s in scores]

    def decide_probe(self, stage: str, feats: np.ndarray, texts_for_embed) -> list[Decision]:
        """Probe decisions; under ``cascade``, uncertain ones call ``texts_for_embed(indices)``.

        ``texts_for_embed`` returns embedding features for the given row indices.
        """
        head = self.heads[f"probe.{stage}"]
        scores = head.score(feats)
        # Under the cascade the probe blocks above the band's top (its FPR threshold).
        lo, hi = self.bands[stage] if self.backbone == "cascade" else (head.threshold, head.threshold)
        out = [Decision(blocked=bool(s > hi), by=stage if s > hi else None, stage="probe",
                        score=float(s), threshold=hi) for s in scores]
        unsure = [i for i, s in enumerate(scores) if lo < s <= hi]
        if unsure:
            emb = self.decide_embed(stage, texts_for_embed(unsure))
            for i, d in zip(unsure, emb):
                d.escalated = 1
                out[i] = d
        return out

    def input_decisions_embed(self, convs: Sequence[Sequence[Message]]) -> list[Decision]:
        return self.decide_embed("input", self.embedder.input_features(convs))

    # ------------------------------------------------------------------ files
    def save(self, out: str | Path) -> Path:
        from safetensors.torch import save_file

        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, Any] = {}
        for k, h in self.heads.items():
            tensors.update(h.tensors(k))
        save_file(tensors, str(d / "weights.safetensors"))
        cfg = {"format": FORMAT, "format_version": 1, "backbone": self.backbone,
               "refusal_message": self.refusal_message, "chunk_tokens": self.chunk_tokens,
               "layers": list(self.layers), "target": self.target, "bands": self.bands,
               "thresholds": {k: h.threshold for k, h in self.heads.items()},
               **self.config}
        (d / "config.json").write_text(json.dumps(cfg, indent=2))
        self.path = str(d)
        return d


def load_guard(path: str | Path) -> Guard:
    """Load a guard directory written by ``alignlab guard train``.

    Raises:
        ValueError: one line naming the file and what is wrong.
    """
    from safetensors.torch import load_file

    d = Path(path)
    cfg_path = d / "config.json"
    if not cfg_path.exists():
        raise ValueError(f"{cfg_path}: no guard here; train one with 'alignlab guard train --out {d}'")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_path}: not valid JSON ({e}); retrain the guard") from None
    if cfg.get("format") != FORMAT:
        raise ValueError(f"{cfg_path}: field 'format' is {cfg.get('format')!r}, not {FORMAT!r}; "
                         f"this is not an alignlab guard directory")
    if cfg.get("backbone") not in BACKBONES:
        raise ValueError(f"{cfg_path}: field 'backbone' must be one of {BACKBONES}")
    wpath = d / "weights.safetensors"
    if not wpath.exists():
        raise ValueError(f"{wpath}: missing; the guard directory is incomplete, retrain it")
    t = load_file(str(wpath))
    thresholds = cfg.pop("thresholds", {})
    heads = {k: LinearHead.from_tensors(t, k, float(thr)) for k, thr in thresholds.items()}
    known = {"format", "format_version", "backbone", "refusal_message", "chunk_tokens", "layers",
             "target", "bands"}
    return Guard(backbone=cfg["backbone"], heads=heads, refusal_message=cfg.get("refusal_message") or
                 "I can't help with that request.", chunk_tokens=int(cfg.get("chunk_tokens", 16)),
                 layers=tuple(cfg.get("layers") or ()), target=cfg.get("target"),
                 bands={k: list(v) for k, v in (cfg.get("bands") or {}).items()},
                 config={k: v for k, v in cfg.items() if k not in known}, path=str(d))
