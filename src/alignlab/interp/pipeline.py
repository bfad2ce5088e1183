"""The interpretability steps as functions: evaluate an SAE, label and score its features.

``alignlab interp eval-sae`` / ``autointerp`` and the lab's interp stage both call these, so the
command line and the lab measure the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alignlab.interp.result import AutointerpResult

Progress = Callable[[str, int, int], None]


def evaluate_sae(sae_dir: str | Path, store, model=None, tokens: int = 200_000, ce_contexts: int = 64,
                 progress: Progress | None = None, model_spec: str | None = None) -> dict[str, Any]:
    """Held-out FVU, L0, dead/dense fractions and (with ``model``) CE / KL with the SAE spliced in.

    Writes ``metrics.json`` into ``sae_dir`` and returns it.

    Args:
        sae_dir: an SAE folder (``cfg.json`` + weights).
        store: the :class:`~alignlab.interp.acts.ActivationStore` it was trained on; only its held-out
            contexts are read.
        model: the in-process model for the CE splice (None: skip it).
        tokens: held-out tokens for the reconstruction metrics.
        ce_contexts: held-out contexts for the CE splice (0: skip it).
        progress: ``(phase, done, total)`` callback.
        model_spec: recorded in the metrics (default: the store's).
    """
    from alignlab.interp.metrics import reconstruction_metrics
    from alignlab.interp.sae import load_sae
    from alignlab.interp.splice import ce_metrics

    d = Path(sae_dir)
    s = load_sae(d)
    key = f"resid.{s.cfg.hook_layer}"
    res = reconstruction_metrics(s, store, key, max_tokens=tokens, split="heldout")
    res.pop("density", None)
    if model is not None and ce_contexts:
        assert s.cfg.hook_layer is not None  # else store.check_key rejected key "resid.None" above
        res.update(ce_metrics(model, s, s.cfg.hook_layer, store, n_contexts=ce_contexts,
                              progress=(lambda a, b: progress("CE splice", a, b)) if progress else None))
    res.update({"sae": str(d), "acts": str(store.path), "key": key,
                "model": model_spec or store.meta.get("model_spec")})
    (d / "metrics.json").write_text(json.dumps(res, indent=1))
    return res


def autointerp_sae(sae_dir: str | Path, store, out_dir: str | Path, explainer, scorer, config=None, *,
                   target=None, tokenizer=None, tokens: int = 200_000, n_latents: int = 200,
                   n_neurons: int = 100, n_random: int = 100, seed: int = 0,
                   progress: Progress | None = None, title: str | None = None) -> AutointerpResult:
    """Label sampled SAE latents, score the labels on held-out windows, against baselines.

    Writes ``latents.jsonl`` (resumable) and ``results.json`` into ``out_dir`` and returns the
    results; ``result.save(out_dir)`` adds the feature browser ``report.html``.

    Args:
        sae_dir: the SAE folder.
        store: an activation store holding the SAE's layer.
        out_dir: output folder (a rerun resumes at the last finished latent).
        explainer: model that writes labels (any ChatModel, or ``LexicalModel``).
        scorer: model that answers detection and fuzzing.
        config: :class:`~alignlab.interp.autointerp.AutoInterpConfig` (default settings if None).
        target: the in-process model the store came from, for the random-neuron baseline (None: skip it).
        tokenizer: tokenizer that decodes the store's token ids (default: the target's).
        tokens: token budget the contexts are drawn from.
        n_latents, n_neurons, n_random: how many SAE latents, MLP neurons and random-SAE latents.
        seed: sampling seed.
        progress: ``(phase, done, total)`` callback.
        title: feature browser title.
    """
    from alignlab.interp.autointerp import AutoInterpConfig, run_autointerp
    from alignlab.interp.sae import load_sae
    from alignlab.interp.sources import build_sources, token_table

    d, out = Path(sae_dir), Path(out_dir)
    s = load_sae(d)
    skey = f"resid.{s.cfg.hook_layer}"
    if skey not in store.keys():
        raise ValueError(f"{store.path}: holds {', '.join(store.keys())}, not {skey} (the SAE's layer)")
    tok = tokenizer if tokenizer is not None else getattr(target, "tokenizer", None)
    if tok is None:
        raise ValueError("autointerp needs a tokenizer to decode the store's tokens: pass the target model")
    noop: Progress = lambda *a: None  # noqa: E731
    p = progress or noop
    sources, info = build_sources(s, store, skey, tokens, n_latents, model=target if n_neurons else None,
                                  n_random=n_random, n_neurons=n_neurons if target is not None else 0,
                                  seed=seed, progress=p)
    table = token_table(store, info["tokens"], tok)
    res = run_autointerp(table, sources, explainer, scorer, config or AutoInterpConfig(seed=seed), out,
                         progress=lambda a, b: p("explain + score", a, b))
    metrics_file = d / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else None
    res.update(sampling=info, sae=str(d), explainer=explainer.identity, scorer=scorer.identity,
               sae_metrics={k: metrics.get(k) for k in ("fvu", "fvu_typical", "l0", "dead_frac", "ce_score",
                                                         "delta_ce_nats", "kl", "tokens")} if metrics else None)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    return AutointerpResult(res, out_dir=out, latents_path=out / "latents.jsonl", sae_metrics=metrics,
                            title=title or f"Features of {d.name}")
