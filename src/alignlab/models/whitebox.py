"""Forward hooks on an in-process HF causal LM: where the blocks are, reading and editing them.

Layer ``L`` means the output of decoder block ``L`` (the residual stream after it), as in SAELens's
``blocks.L.hook_resid_post``; ``mlp_out`` is the output of that block's MLP before it is added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from alignlab.models.base import WhiteBoxRequired


class StopForward(Exception):
    """Raised by a hook to end a forward pass after the last layer that is needed."""


def hf_parts(model):
    """``(HFModel, transformers model, tokenizer)`` of an alignlab model, or one clear error."""
    from alignlab.models.hf import HFModel

    if not isinstance(model, HFModel):
        ident = getattr(model, "identity", type(model).__name__)
        raise WhiteBoxRequired(f"{ident} is a black-box model; activations and hooks need an in-process "
                               f"model: use an embedded: or hf: spec")
    return model, model.model, model.tokenizer


def decoder_layers(lm) -> Sequence:
    """The decoder block list of a transformers causal LM (Llama, Gemma, Qwen, Mistral, GPT-2 ...)."""
    for path in ("model.layers", "model.language_model.layers", "transformer.h", "gpt_neox.layers",
                 "model.decoder.layers"):
        obj = lm
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    raise WhiteBoxRequired(f"cannot find the decoder blocks of {type(lm).__name__}; "
                           f"supported: Llama-style model.layers, GPT-2 transformer.h, GPT-NeoX layers")


def base_model(lm):
    """The transformer without its LM head, so capture does not pay for vocabulary logits."""
    for name in ("model", "transformer", "gpt_neox"):
        inner = getattr(lm, name, None)
        if inner is not None and hasattr(inner, "forward"):
            return inner
    return lm


def n_layers(lm) -> int:
    return len(decoder_layers(lm))


def check_layers(lm, layers: Sequence[int], what: str = "--layers") -> list[int]:
    """Sorted unique layers, or one error naming the valid range."""
    n = n_layers(lm)
    bad = [l for l in layers if not 0 <= l < n]
    if bad:
        raise ValueError(f"{what}: {bad} outside 0..{n - 1} (the model has {n} decoder blocks)")
    return sorted(set(layers))


def _hidden(output):
    return output[0] if isinstance(output, tuple) else output


def _replace(output, new):
    return (new,) + tuple(output[1:]) if isinstance(output, tuple) else new


@contextmanager
def hooks(lm, *, read: dict[str, Callable] | None = None, edit: dict[int, Callable] | None = None,
          stop_after: int | None = None) -> Iterator[None]:
    """Register hooks for the duration of a ``with`` block.

    Args:
        lm: transformers causal LM.
        read: ``{"resid.L" | "mlp_out.L": fn(tensor)}`` called with that site's output.
        edit: ``{L: fn(hidden) -> hidden}`` replacing block ``L``'s output (steering, splicing).
        stop_after: end the forward pass once block ``stop_after`` has run (its reads done); the
            :class:`StopForward` this raises is swallowed on leaving the block.
    """
    blocks = decoder_layers(lm)
    handles = []
    try:
        for key, fn in (read or {}).items():
            site, layer = key.rsplit(".", 1)
            module = blocks[int(layer)] if site == "resid" else blocks[int(layer)].mlp
            if site not in ("resid", "mlp_out"):
                raise ValueError(f"unknown site {site!r}; use resid or mlp_out")
            handles.append(module.register_forward_hook(lambda m, i, o, fn=fn: fn(_hidden(o))))
        for edit_layer, fn in (edit or {}).items():
            handles.append(blocks[edit_layer].register_forward_hook(
                lambda m, i, o, fn=fn: _replace(o, fn(_hidden(o)))))
        if stop_after is not None:
            def stop(m, i, o):
                raise StopForward
            handles.append(blocks[stop_after].register_forward_hook(stop))
        try:
            yield
        except StopForward:
            pass
    finally:
        for h in handles:
            h.remove()


def residuals(lm, seqs: Sequence[Sequence[int]], layers: Sequence[int], pad: int, batch_size: int,
              spans: Sequence[tuple[int, int]] | None = None) -> dict[int, list]:
    """The output of each decoder block in ``layers`` for every token sequence, float32 on the CPU.

    Sequences run shortest first in batches, right-padded (causal attention keeps the pads out of
    the real rows) and the forward pass stops after the deepest layer asked for.

    Args:
        lm: the in-process causal LM.
        seqs: token ids, one list per sequence.
        layers: decoder blocks to read (checked by the caller).
        pad: the pad token id.
        batch_size: rows per forward pass.
        spans: ``(start, end)`` token positions to keep per sequence (default: all of it).

    Returns:
        ``{layer: [tensor [positions, d] per sequence, in input order]}``.
    """
    import torch

    out: dict[int, list] = {l: [None] * len(seqs) for l in layers}
    body = base_model(lm)
    device = next(lm.parameters()).device
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            width = max(len(seqs[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
                mask[r, :len(seqs[i])] = 1
            position = torch.arange(width)[None].expand(len(idx), -1)
            got: dict[int, torch.Tensor] = {}
            read = {f"resid.{l}": (lambda t, l=l, got=got: got.__setitem__(l, t)) for l in layers}
            with hooks(lm, read=read, stop_after=max(layers)):
                body(input_ids=ids.to(device), attention_mask=mask.to(device),
                     position_ids=position.to(device), use_cache=False)
            for l in layers:
                for r, i in enumerate(idx):
                    a, b = spans[i] if spans is not None else (0, len(seqs[i]))
                    out[l][i] = got[l][r, a:b].float().cpu()
    return out
