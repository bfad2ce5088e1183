"""What auto-interp returns: :class:`AutointerpResult`, results.json with typed access."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignlab.results import Result


class AutointerpResult(Result):
    """Labelled SAE latents scored on held-out windows, against neuron and random-SAE baselines.

    ``data`` is results.json; the per-latent labels and scores stay in ``latents_path``
    (``latents.jsonl``, written as each latent finishes); ``sae_metrics`` are the SAE's own
    reconstruction figures; ``title`` heads the feature browser.
    """

    stage = "autointerp"

    def __init__(self, data: dict[str, Any], rows: list[dict[str, Any]] | None = None,
                 out_dir: str | Path | None = None, latents_path: str | Path | None = None,
                 sae_metrics: dict[str, Any] | None = None, title: str = "Features") -> None:
        super().__init__(data, rows, out_dir)
        self.latents_path = Path(latents_path) if latents_path else (self.out_dir / "latents.jsonl"
                                                                       if self.out_dir else None)
        self.sae_metrics = sae_metrics
        self.title = title

    def summary(self) -> str:
        return f"auto-interp of {self.data.get('sae')}: explainer {self.data.get('explainer')}, " \
               f"scorer {self.data.get('scorer')} -> {self.out_dir}"
