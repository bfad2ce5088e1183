"""The assistant axis of one model at one layer, and positions on it.

``AxisInfo`` is what ``persona map`` (:func:`~alignlab.evals.persona.persona_map`) extracts and
the other persona measurements (drift, activation capping) project onto: the axis
``mean(default assistant) - mean over role personas of their means``, its origin, the (PC1, PC2)
plane of the persona means, a sample of default-assistant token activations for thresholds, and
the trait directions. Positions use the scale "1 = the default assistant's mean, 0 = the mean of
the role personas' means" (:meth:`AxisInfo.position`). Saved as ``persona.json`` plus
``directions.safetensors``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alignlab.models.whitebox import check_layers, hf_parts

SCALE = "1 = default assistant, 0 = mean of role personas"
DIRECTIONS_FILE = "directions.safetensors"


@dataclass
class AxisInfo:
    """The assistant axis and trait directions of one model at one layer (``persona map`` output)."""

    model: str
    layer: int
    axis: np.ndarray
    """default assistant mean minus the role personas' centre (not unit)."""
    origin: np.ndarray
    """The role personas' centre (mean of the per-role means): position 0."""
    default_tokens: np.ndarray
    """Per-token activations of default-assistant replies (a seeded sample), for thresholds."""
    pca_mean: np.ndarray
    pcs: np.ndarray
    """``[2, d]``: PC1 (sign-aligned with the axis) and PC2 of the persona means."""
    traits: dict[str, np.ndarray] = field(default_factory=dict)
    default_system: str | None = None

    @property
    def unit(self) -> np.ndarray:
        return self.axis / np.linalg.norm(self.axis)

    def position(self, acts: np.ndarray) -> np.ndarray:
        """Positions on the axis, scaled so 1 = default assistant mean, 0 = role centre."""
        return (np.atleast_2d(acts) - self.origin) @ self.axis / float(self.axis @ self.axis)

    def pc_coords(self, acts: np.ndarray) -> np.ndarray:
        """``[n, 2]`` coordinates in the (PC1, PC2) plane of the persona map."""
        return (np.atleast_2d(acts) - self.pca_mean) @ self.pcs.T

    def save(self, out_dir: str | Path) -> Path:
        """Write the vectors to ``out_dir/directions.safetensors``."""
        from safetensors.numpy import save_file

        tensors = {"axis": self.axis, "origin": self.origin, "default_tokens": self.default_tokens,
                   "pca_mean": self.pca_mean, "pcs": self.pcs,
                   **{f"trait.{k}": v for k, v in self.traits.items()}}
        path = Path(out_dir) / DIRECTIONS_FILE
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path))
        return path

    @classmethod
    def load(cls, path: str | Path) -> AxisInfo:
        """From a ``persona.json`` (or the folder holding it) and the safetensors it names."""
        from safetensors.numpy import load_file

        p = Path(path)
        if p.is_dir():
            p = p / "persona.json"
        if not p.is_file():
            raise FileNotFoundError(f"{p}: not found; give the persona.json written by `alignlab persona map`")
        try:
            meta = json.loads(p.read_text(encoding="utf-8"))
            vec_path = p.parent / meta.get("directions", DIRECTIONS_FILE)
            layer = int(meta["layer"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{p}: not a persona.json from `alignlab persona map` ({e}); rerun persona map") from None
        if not vec_path.is_file():
            raise FileNotFoundError(f"{vec_path}: missing; persona.json names it; rerun `alignlab persona map`")
        t = load_file(str(vec_path))
        return cls(model=meta.get("model", ""), layer=layer, axis=t["axis"], origin=t["origin"],
                   default_tokens=t["default_tokens"], pca_mean=t["pca_mean"], pcs=t["pcs"],
                   traits={k[6:]: v for k, v in t.items() if k.startswith("trait.")},
                   default_system=meta.get("default_system"))

    def check_model(self, model) -> None:
        """Raise one clear error when ``model``'s width or depth cannot hold this axis."""
        _, lm, _ = hf_parts(model)
        width = lm.config.get_text_config().hidden_size
        if width != self.axis.shape[0]:
            raise ValueError(f"the axis was made for width {self.axis.shape[0]} ({self.model}) but the "
                             f"model has width {width}; run persona map on this model")
        check_layers(lm, [self.layer], "axis layer")
