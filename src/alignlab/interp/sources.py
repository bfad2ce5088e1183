"""Latent activations for auto-interp: the SAE, and its two baselines, over one token budget.

* ``sae``: the trained SAE's latents, sampled uniformly among the *live* ones (fired at least once
  in the budget);
* ``random_sae``: a TopK SAE of the same width and k with random unit-norm weights (encoder = decoder
  transpose, zero biases), which fires as sparsely but was never trained;
* ``neurons``: MLP neurons of the same block (the input of its down projection), re-computed with a
  forward pass over the budget's contexts; they are dense, so each is kept only on its top tokens
  at the SAE's mean density (:func:`alignlab.interp.autointerp.sparsify_dense`), so that "fires"
  means the same thing as for a latent.

BOS rows are zeroed in every source (they are also left out of every window).
"""

from __future__ import annotations

from collections.abc import Callable

from alignlab.interp.acts import ActivationStore
from alignlab.models.whitebox import base_model, decoder_layers, hf_parts, hooks


def token_table(store: ActivationStore, n_tokens: int, tokenizer):
    """The first ``n_tokens`` rows of ``store`` (whole contexts) as an auto-interp TokenTable."""
    from alignlab.interp.autointerp_types import TokenTable

    ids, docs, pos = store.tokens()
    t = int(store.meta["context_len"])
    n = min(len(ids), max(t, n_tokens // t * t))
    cache: dict[int, str] = {}

    def decode_tokens(seq: list[int]) -> list[str]:
        out = []
        for i in seq:
            if i not in cache:
                cache[i] = tokenizer.decode([i])
            out.append(cache[i])
        return out

    return TokenTable(token_ids=ids[:n], doc_ids=docs[:n], decode_tokens=decode_tokens, positions=pos[:n])


def _encode_columns(encode: Callable, x, cols=None, chunk: int = 8192):
    """Per-latent firing counts over ``x`` and, when ``cols`` is given, those columns' activations."""
    import torch

    counts, parts = None, []
    with torch.inference_mode():
        for s in range(0, len(x), chunk):
            z = encode(x[s:s + chunk])
            c = (z > 0).sum(0)
            counts = c if counts is None else counts + c
            if cols is not None:
                parts.append(z[:, cols].float())
    return counts, (torch.cat(parts) if cols is not None else None)


def sample_live(counts, n: int, seed: int) -> list[int]:
    """``n`` latents drawn uniformly (seeded) among those that fired at least once."""
    import torch

    live = torch.nonzero(counts > 0).flatten()
    g = torch.Generator().manual_seed(seed)
    pick = live[torch.randperm(len(live), generator=g)[:n]]
    return sorted(pick.tolist())


def random_sae_like(sae, seed: int):
    """A TopK SAE with the same shape and k as ``sae`` and random unit-norm weights."""
    import torch

    from alignlab.interp.sae import SAE, SAEConfig

    k = sae.cfg.k or int(sae.cfg.training.get("k", 32))  # a BatchTopK SAE saved as JumpReLU keeps k there
    cfg = SAEConfig(d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae, arch="topk", k=k,
                    hook_name=sae.cfg.hook_name, hook_layer=sae.cfg.hook_layer)
    torch.manual_seed(seed)
    return SAE(cfg)


def down_proj(lm, layer: int):
    """Block ``layer``'s MLP output projection; its input is the MLP's neuron activations."""
    mlp = decoder_layers(lm)[layer].mlp
    down = getattr(mlp, "down_proj", None) or getattr(mlp, "c_proj", None) or getattr(mlp, "fc2", None)
    if down is None:
        raise ValueError(f"cannot find the down projection of block {layer}'s MLP ({type(mlp).__name__})")
    return down


def _sampled(encode: Callable, x, n: int, seed: int, bos):
    """Firing counts of every latent over ``x`` and the activations of ``n`` sampled live ones
    (BOS rows zeroed)."""
    import torch

    counts, _ = _encode_columns(encode, x)
    ids = sample_live(counts, n, seed)
    _, acts = _encode_columns(encode, x, torch.tensor(ids))
    acts[bos] = 0
    return counts, ids, acts


def mlp_neurons(model, store: ActivationStore, layer: int, n_tokens: int, neuron_ids: list[int],
                batch_size: int = 16, progress: Callable[[int, int], None] | None = None):
    """Activations ``[n, len(neuron_ids)]`` of block ``layer``'s MLP neurons on the store's first contexts."""
    import torch

    _, lm, _ = hf_parts(model)
    down = down_proj(lm, layer)
    ids = store.tokens()[0]
    t = int(store.meta["context_len"])
    n_ctx = max(1, min(len(ids), n_tokens) // t)
    ctx = ids[:n_ctx * t].view(n_ctx, t)
    cols = torch.tensor(neuron_ids)
    parts: list = []
    grab = down.register_forward_pre_hook(
        lambda m, args: parts.append(args[0][..., cols].float().reshape(-1, len(cols))))
    body = base_model(lm)
    device = next(lm.parameters()).device
    try:
        with torch.inference_mode():
            for s in range(0, n_ctx, batch_size):
                with hooks(lm, stop_after=layer):
                    body(input_ids=ctx[s:s + batch_size].to(device), use_cache=False)
                if progress:
                    progress(min(s + batch_size, n_ctx), n_ctx)
    finally:
        grab.remove()
    return torch.cat(parts)


def build_sources(sae, store: ActivationStore, key: str, n_tokens: int, n_latents: int, *, model=None,
                  n_random: int = 0, n_neurons: int = 0, seed: int = 0,
                  progress: Callable[[str, int, int], None] | None = None) -> tuple[dict, dict]:
    """``sources`` for :func:`~alignlab.interp.autointerp.run_autointerp` and a summary of the sampling."""
    import torch

    from alignlab.interp.autointerp_examples import sparsify_dense

    t = int(store.meta["context_len"])
    n = max(t, n_tokens // t * t)
    x = store.load(key, 0, n)
    bos = (store.tokens()[2][:len(x)] == 0)
    counts, ids, acts = _sampled(sae.encode, x, n_latents, seed, bos)
    sources = {"sae": (acts, ids)}
    live = int((counts > 0).sum())
    info = {"tokens": len(x), "sae_live": live, "sae_width": int(sae.cfg.d_sae),
            "sae_mean_density_sampled": float((acts > 0).float().mean())}
    if n_random:
        _, rids, racts = _sampled(random_sae_like(sae, seed + 1).encode, x, n_random, seed + 2, bos)
        sources["random_sae"] = (racts, rids)
    if n_neurons and model is not None:
        d_mlp = down_proj(hf_parts(model)[1], sae.cfg.hook_layer).in_features
        g = torch.Generator().manual_seed(seed + 3)
        nids = sorted(torch.randperm(d_mlp, generator=g)[:n_neurons].tolist())
        dense = mlp_neurons(model, store, sae.cfg.hook_layer, len(x), nids,
                            progress=(lambda a, b: progress("neurons forward", a, b)) if progress else None)
        dense[bos] = 0
        density = min(max(info["sae_mean_density_sampled"], 1e-4), 0.5)
        sources["neurons"] = (sparsify_dense(dense, density), nids)
        info.update({"neurons_of": d_mlp, "neurons_kept_density": density})
    return sources, info
