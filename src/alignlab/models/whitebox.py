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
