"""Activation steering: add a direction to a block's output during every forward pass.

``with steer(model, direction, layer, coefficient): model.generate(...)`` works for generation,
scoring and capture alike, because the edit is a forward hook on the in-process HF model. The
direction may be an SAE decoder row (:func:`sae_direction`), a probe's weight vector, a
difference of means, or any vector of the model's width. It is scaled to unit norm, so
``coefficient`` is in units of the residual stream's own scale (compare with the typical norm of
that layer's activations, which :func:`typical_norm` measures).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from alignlab.models.whitebox import check_layers, hf_parts, hooks


def unit(direction):
    """``direction`` as a float32 unit vector (one clear error for a zero vector)."""
    import torch

    v = torch.as_tensor(direction, dtype=torch.float32).flatten()
    norm = v.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise ValueError("steering direction has zero or non-finite norm")
    return v / norm


@contextmanager
def steer(model, direction, layer: int, coefficient: float, *, positions: str = "all",
          skip_bos: bool = True) -> Iterator[None]:
    """Add ``coefficient * unit(direction)`` to the output of decoder block ``layer``.

    Args:
        model: an in-process HF model (embedded: or hf:).
        direction: a vector of the model's hidden size.
        layer: decoder block whose output (residual stream) is shifted.
        coefficient: how far to move along the direction (may be negative).
        positions: ``"all"`` tokens or only the ``"last"`` one of each forward call.
        skip_bos: leave position 0 alone (its huge attention-sink norm is not meant to move).
    """
    hf, lm, _ = hf_parts(model)
    check_layers(lm, [layer], "steering layer")
    width = lm.config.get_text_config().hidden_size
    v = unit(direction)
    if v.numel() != width:
        raise ValueError(f"steering direction has {v.numel()} dims but the model's hidden size is {width}")
    if positions not in ("all", "last"):
        raise ValueError("positions must be 'all' or 'last'")

    def edit(hidden):
        shift = (coefficient * v).to(hidden.dtype).to(hidden.device)
        out = hidden.clone()
        if positions == "last":
            out[:, -1] += shift
        else:
            start = 1 if skip_bos and hidden.shape[1] > 1 else 0
            out[:, start:] += shift
        return out

    with hooks(lm, edit={layer: edit}):
        yield


def sae_direction(sae, latent: int):
    """The decoder row of an SAE latent (what the latent writes into the residual stream)."""
    return sae.W_dec[latent].detach().float()


def mean_activation(model, texts: Sequence[str], layer: int, batch_size: int = 8):
    """Mean (over texts) of the mean-pooled block-``layer`` output of each text (BOS excluded)."""
    from alignlab.interp.probes import pooled_activations

    return pooled_activations(model, texts, [layer], pool="mean", batch_size=batch_size)[layer].mean(0)


def diff_of_means(model, positive: Sequence[str], negative: Sequence[str], layer: int):
    """``mean(positive) - mean(negative)`` activation at ``layer``: a direction with a known effect."""
    import torch

    return torch.as_tensor(mean_activation(model, positive, layer) - mean_activation(model, negative, layer))


def typical_norm(model, texts: Sequence[str], layer: int) -> float:
    """Median per-token activation norm at ``layer`` over ``texts`` (BOS excluded), for scale."""
    import torch

    from alignlab.interp.probes import token_activations

    acts = token_activations(model, texts, [layer])[layer]
    return float(torch.cat([a.norm(dim=-1) for a in acts]).median())


__all__ = ["steer", "sae_direction", "diff_of_means", "mean_activation", "typical_norm", "unit"]
