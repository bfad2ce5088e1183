"""The KV cache of batched generation on an in-process transformers model, and grouped prefill.

``HFModel`` (:mod:`alignlab.models.hf`) prefills a batch's prompts in groups of similar length
(``prefill_groups``), writes each group's keys and values right-aligned into one cache allocated
once for the whole batch (``preallocated_cache``: its layers write in place instead of
concatenating per token), drops finished rows from it (``select_cache``) and passes it under the
forward argument name the installed transformers expects (``cache_kwarg``). transformers and torch
are imported inside the functions that need them.
"""

from __future__ import annotations

from typing import cast


def cache_kwarg(model) -> str:
    """The forward argument that takes the KV cache: ``cache`` in transformers releases that
    renamed it (5.24 warns that ``past_key_values`` goes in 5.40), else ``past_key_values``."""
    import inspect

    params = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def select_cache(cache, sel):
    """Keep only the batch rows ``sel`` of the cache (finished rows leave the batch)."""
    cache.batch_select_indices(sel)
    return cache


#: Most tokens (rows x padded width) prefilled in one forward pass; see ``HFModel._prefill``.
PREFILL_TOKENS = 1024
#: Most padding, as a fraction of a prefill group's tokens, before a new group starts.
PREFILL_WASTE = 0.1


def prefill_groups(lengths: list[int], max_tokens: int = PREFILL_TOKENS,
                   max_waste: float = PREFILL_WASTE) -> list[tuple[int, int]]:
    """Split rows sorted longest first into ``(start, end)`` runs to prefill together.

    A run grows while its padded size (rows x its longest length) stays within ``max_tokens``
    and its padding within ``max_waste`` of that size; a prompt longer than ``max_tokens`` is a
    run of its own.
    """
    groups, start = [], 0
    while start < len(lengths):
        w, end, total = lengths[start], start + 1, lengths[start]
        while end < len(lengths):
            rows, t = end + 1 - start, total + lengths[end]
            if rows * w > max_tokens or rows * w - t > max_waste * rows * w:
                break
            end, total = end + 1, t
        groups.append((start, end))
        start = end
    return groups


def preallocated_cache(config, capacity: int):
    """A DynamicCache whose layers write into buffers allocated once for ``capacity`` positions.

    transformers' DynamicLayer concatenates the whole cache with each new token, which costs more
    than the model's matmuls for a 135M model on CPU (measured: 57% of decode time). These layers
    write in place and hand attention a view of the filled part. The cache is filled by grouped
    prefill (``write_rows``: each group's keys and values, right-aligned); positions no group
    wrote stay zero and are masked.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        def write(self, k, v, rows: int, r0: int, start: int) -> None:
            """Write a prefill group's ``k``/``v`` at rows ``r0:`` and positions ``start:``."""
            if not self.is_initialized:
                self.lazy_initialization(k, v)
                self._k = k.new_zeros((rows, k.shape[1], capacity, k.shape[3]))
                self._v = v.new_zeros((rows, v.shape[1], capacity, v.shape[3]))
                self._n = 0
            self._k[r0:r0 + k.shape[0], :, start:start + k.shape[2]] = k
            self._v[r0:r0 + v.shape[0], :, start:start + v.shape[2]] = v

        def set_length(self, n: int) -> None:
            self._n = n
            self.keys, self.values = self._k[:, :, :n], self._v[:, :, :n]

        def update(self, key_states, value_states, *args, **kwargs):
            n = key_states.shape[-2]
            if self._n + n > self._k.shape[2]:  # grow (not expected: capacity covers the batch)
                self._k = torch_cat_grow(self._k, self._n + n)
                self._v = torch_cat_grow(self._v, self._n + n)
            self._k[:, :, self._n:self._n + n] = key_states
            self._v[:, :, self._n:self._n + n] = value_states
            self.set_length(self._n + n)
            return self.keys, self.values

        def batch_select_indices(self, indices):
            if self.is_initialized:
                self._k, self._v = self._k[indices], self._v[indices]
                self.set_length(self._n)

    class BatchCache(DynamicCache):
        grouped_prefill = True

        def group_cache(self):
            return DynamicCache(config=config)

        # The casts below: the base class types ``layers`` as any cache layer; the one BatchCache
        # made (at the end of this function) gets PreallocatedLayers only.
        def write_rows(self, group, rows: int, r0: int, start: int) -> None:
            for layer, g in zip(cast("list[PreallocatedLayer]", self.layers), group.layers):
                layer.write(g.keys, g.values, rows, r0, start)

        def finish_prefill(self, width: int) -> None:
            for layer in cast("list[PreallocatedLayer]", self.layers):
                layer.set_length(width)

    text = config.get_text_config()
    if any("sliding" in t for t in (getattr(text, "layer_types", None) or [])) or \
            getattr(text, "sliding_window", None):
        return DynamicCache(config=config)  # sliding-window layers keep transformers' own logic
    cache = BatchCache()
    cache.layers = [PreallocatedLayer() for _ in range(text.num_hidden_layers)]
    return cache


def torch_cat_grow(buf, need: int):
    import torch

    extra = buf.new_empty((*buf.shape[:2], max(need, 2 * buf.shape[2]) - buf.shape[2], buf.shape[3]))
    return torch.cat([buf, extra], dim=2)
