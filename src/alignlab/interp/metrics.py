"""Reconstruction and sparsity metrics of an SAE on a stated budget of stored activations.

FVU is pooled: the summed squared error over every token and dimension, divided by the summed
squared deviation of the same activations from their mean (one mean vector over the budget).
Explained variance is ``1 - FVU``. CE loss with the SAE spliced into the model is measured
elsewhere (``alignlab.interp.splice``).

Pooled FVU is dominated by a few "massive activation" tokens when the model has them (SmolLM2's
first token after BOS sometimes has a residual norm 60-150x the median): one such token carries the
squared deviation of thousands of ordinary ones, so whether the SAE spends latents on them swings
the figure. ``fvu_typical`` therefore repeats the measurement without tokens whose norm exceeds
``OUTLIER_RATIO`` times the median norm, and ``outlier_tokens`` says how many were left out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from alignlab.interp.acts import ActivationStore
from alignlab.interp.sae import SAE

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
OUTLIER_RATIO = 10.0
"""Tokens with a norm above this multiple of the median norm are left out of ``fvu_typical``."""


def reconstruction_metrics(sae: SAE, store: ActivationStore, key: str, max_tokens: int | None = None,
                           *, split: str = "heldout", start: int = 0, stop: int | None = None,
                           batch_size: int = 4096, skip_positions: int = 1,
                           quantiles: Sequence[float] = QUANTILES) -> dict:
    """FVU, L0 and latent densities of ``sae`` on the ``split`` tokens of ``store[key]``.

    Args:
        sae: the SAE (reads raw activations).
        store: activation store.
        key: store key, e.g. ``"resid.15"``.
        max_tokens: budget: at most this many tokens, the first ones of the split (after dropping
            positions below ``skip_positions``, the BOS / attention-sink token, as training does).
        split: "heldout" (contexts SAEs never train on), "train" or "all".
        start, stop: row range of the store to read.
        batch_size: rows read per chunk.
        skip_positions: drop tokens at context positions below this.
        quantiles: L0 quantiles to report.

    Returns:
        ``tokens``, ``fvu``, ``explained_variance``, ``fvu_typical`` and ``outlier_tokens`` (FVU
        without tokens over ``OUTLIER_RATIO`` x the median norm, and how many those were), ``mse``
        (squared error per token, summed over
        dimensions), ``l0`` (mean active latents per token), ``l0_quantiles`` ({q: value}),
        ``l0_hist`` ({"values": [...], "counts": [...]}, tokens by L0), ``dead_frac`` (latents
        that never fire), ``dense_1pct_frac`` / ``dense_10pct_frac`` (latents firing on more than
        1% / 10% of tokens), ``density`` (per-latent firing fraction) and ``fire_counts``.

    Raises:
        ValueError: the key or split is missing, the SAE's width does not match, or no token is
            in range.
    """
    import numpy as np
    import torch

    store.check_key(key)
    if sae.cfg.d_in != store.d_model:
        raise ValueError(f"{store.path}: {key} has width {store.d_model} but the SAE reads d_in="
                         f"{sae.cfg.d_in}; use the SAE trained on this model and site")
    if split != "all" and "context_len" not in store.meta:
        raise ValueError(f"{store.path}: meta.json has no context_len, so no {split} split; "
                         "use split='all'")
    stop = store.n_tokens if stop is None else min(stop, store.n_tokens)
    budget = max_tokens if max_tokens is not None else float("inf")
    norms = []
    n = 0
    for s in range(start, stop, batch_size):
        if n >= budget:
            break
        x = store.load(key, s, min(s + batch_size, stop), split=split, skip_positions=skip_positions)
        x = x[:int(min(len(x), budget - n))]
        norms.append(x.norm(dim=-1))
        n += len(x)
    limit = float(torch.cat(norms).median()) * OUTLIER_RATIO if n else float("inf")
    n = 0
    sum_x = torch.zeros(sae.cfg.d_in, dtype=torch.float64)
    sum_x2 = sse = 0.0
    typ_x = torch.zeros(sae.cfg.d_in, dtype=torch.float64)
    typ_x2 = typ_sse = 0.0
    n_typ = 0
    fire = torch.zeros(sae.cfg.d_sae, dtype=torch.long)
    l0s = []
    with torch.no_grad():
        for s in range(start, stop, batch_size):
            if n >= budget:
                break
            x = store.load(key, s, min(s + batch_size, stop), split=split, skip_positions=skip_positions)
            x = x[:int(min(len(x), budget - n))]
            if not len(x):
                continue
            z = sae.encode(x)
            recon = z.to_sparse_csr() @ sae.W_dec + sae.b_dec
            active = z > 0
            l0s.append(active.sum(-1))
            fire += active.sum(0)
            x64 = x.double()
            sum_x += x64.sum(0)
            sum_x2 += float(x64.pow(2).sum())
            err = (recon.double() - x64).pow(2).sum(-1)
            sse += float(err.sum())
            typical = x.norm(dim=-1) <= limit
            typ_x += x64[typical].sum(0)
            typ_x2 += float(x64[typical].pow(2).sum())
            typ_sse += float(err[typical].sum())
            n_typ += int(typical.sum())
            n += len(x)
    if n == 0:
        raise ValueError(f"{store.path}: no {split} tokens of {key} in rows {start}:{stop} at "
                         f"positions >= {skip_positions}")
    ss_dev = sum_x2 - float(sum_x.pow(2).sum()) / n
    fvu = sse / ss_dev if ss_dev > 0 else float("nan")
    typ_dev = typ_x2 - float(typ_x.pow(2).sum()) / n_typ if n_typ else 0.0
    fvu_typical = typ_sse / typ_dev if typ_dev > 0 else float("nan")
    l0 = torch.cat(l0s)
    hist = torch.bincount(l0)
    values = hist.nonzero()[:, 0]
    density = fire.double() / n
    return {"key": key, "split": split, "tokens": n, "fvu": fvu, "explained_variance": 1 - fvu,
            "fvu_typical": fvu_typical, "outlier_tokens": n - n_typ,
            "outlier_norm_limit": limit,
            "mse": sse / n, "l0": float(l0.double().mean()),
            "l0_quantiles": {str(q): float(np.quantile(l0.numpy(), q)) for q in quantiles},
            "l0_hist": {"values": values.tolist(), "counts": hist[values].tolist()},
            "dead_frac": float((fire == 0).double().mean()),
            "dense_1pct_frac": float((density > 0.01).double().mean()),
            "dense_10pct_frac": float((density > 0.1).double().mean()),
            "density": density.tolist(), "fire_counts": fire.tolist()}
