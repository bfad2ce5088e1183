"""Faster fp32 linear layers on CPU: oneDNN with weights packed once.

On CPU, PyTorch runs fp32 ``nn.Linear`` through MKL's sgemm, which repacks the weight matrix on
every call. oneDNN (bundled with every PyTorch CPU build) can keep each weight in its own blocked
layout, packed once at load. Measured with SmolLM2's 576x1536 projections on the 2-core machines of
BENCHMARKS.md: 1.73x at 32 rows and 1.6x at 4096 rows on an AMD EPYC, faster at both sizes on an
Intel Xeon too; the same fp32 arithmetic (outputs differ from MKL's only by summation order).

``pack_linears(model)`` swaps every ``nn.Linear`` for a ``PackedLinear`` that keeps the original
``weight``/``bias`` parameters (state dicts, tied embeddings, ``.to()``, deepcopy and hooks added afterwards work
as before; hooks already on a replaced ``nn.Linear`` are not carried over) and adds the
packed copy, so the linear weights take twice the memory. Gradients fall back to ``F.linear``; a
weight that changes (an optimiser step, an ablation, ``.data`` reassigned) is repacked before
its next use.
"""

from __future__ import annotations

import os
from typing import Any

#: Above this many bytes of linear weights the packed copies are not made (memory doubles).
MAX_PACKED_BYTES = 4 * 1024**3


def available() -> bool:
    """True when this torch build can pack and run oneDNN linear weights, checked on a tiny case."""
    if os.environ.get("ALIGNLAB_ONEDNN", "1") == "0":
        return False
    try:
        import torch

        if not torch.backends.mkldnn.is_available():
            return False
        w, x = torch.randn(8, 16), torch.randn(3, 16)
        packed = torch.ops.mkldnn._reorder_linear_weight(w, None)
        y = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
        return bool(torch.allclose(y, x @ w.T, atol=1e-4, rtol=1e-4))
    except Exception:  # noqa: BLE001 - any failure means: use the stock path
        return False


def _packed_linear_class():
    import torch
    import torch.nn.functional as F

    class PackedLinear(torch.nn.Module):
        """``nn.Linear`` with a oneDNN-packed copy of its weight used for inference.

        The packed copy is a plain attribute, not a buffer, so ``.to()``, ``.half()``, deepcopy and
        pickling see an ordinary module (the copy is dropped and rebuilt lazily). It is rebuilt
        whenever the weight tensor changes: a new Parameter, ``.data`` reassigned, or an in-place
        edit (tracked through the tensor's identity, storage pointer and version counter).
        """

        def __init__(self, lin: torch.nn.Linear) -> None:
            super().__init__()
            self.in_features, self.out_features = lin.in_features, lin.out_features
            self.weight = lin.weight
            self.bias = lin.bias
            self._packed, self._packed_key = None, None
            self._repack()

        def _key(self):
            w = self.weight
            return id(w), w.data_ptr(), w._version, w.dtype, w.device

        def _repack(self) -> None:
            with torch.no_grad():
                self._packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), None)
            self._packed_key = self._key()

        def forward(self, x):
            w = self.weight
            if x.dtype != torch.float32 or w.dtype != torch.float32 or x.device.type != "cpu" \
                    or w.device.type != "cpu" or (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)):
                return F.linear(x, w, self.bias)
            if self._packed is None or self._packed_key != self._key():
                self._repack()
            return torch.ops.mkldnn._linear_pointwise(x, self._packed, self.bias, "none", [], "")

        def __getstate__(self):
            return {**self.__dict__, "_packed": None, "_packed_key": None}

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, packed=oneDNN"

    return PackedLinear


def pack_linears(model: Any) -> int:
    """Replace the fp32 ``nn.Linear`` modules of a CPU model by packed ones; returns how many.

    Does nothing (returns 0) off CPU, for other dtypes, when oneDNN is unavailable, when
    ``ALIGNLAB_ONEDNN=0``, or when the linear weights exceed ``MAX_PACKED_BYTES``.
    """
    import torch

    linears = [(parent, name, child) for parent in model.modules()
               for name, child in parent.named_children() if type(child) is torch.nn.Linear]
    if not linears or not available():
        return 0
    if any(lin.weight.device.type != "cpu" or lin.weight.dtype != torch.float32 for _, _, lin in linears):
        return 0
    if sum(lin.weight.numel() * lin.weight.element_size() for _, _, lin in linears) > MAX_PACKED_BYTES:
        return 0
    cls = _packed_linear_class()
    for parent, name, lin in linears:
        setattr(parent, name, cls(lin))
    return len(linears)
