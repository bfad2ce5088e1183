"""Capture residual-stream (and MLP-out) activations of several layers in one forward pass.

Documents are tokenised, each starting with the BOS token, and packed into fixed-length contexts
(a document that runs over a context boundary continues in the next context after a fresh BOS).
The forward pass runs the transformer without its LM head and stops right after the deepest layer
asked for. Rows go to an :class:`~alignlab.interp.acts.ActivationWriter` shard by shard, so a killed
capture resumes where the last shard ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from alignlab.interp.acts import ActivationStore, ActivationWriter
from alignlab.interp.corpus import Doc
from alignlab.models.whitebox import base_model, check_layers, hf_parts, hooks

SITES = ("resid", "mlp_out")


@dataclass
class CaptureConfig:
    """Settings of one capture."""

    layers: tuple[int, ...]
    """Decoder blocks whose outputs are captured (residual stream after block L)."""
    sites: tuple[str, ...] = ("resid",)
    """``resid`` and/or ``mlp_out``."""
    tokens: int = 2_000_000
    """Token budget (BOS tokens included; training skips them)."""
    context_len: int = 256
    """Tokens per context (forward-pass row)."""
    batch_size: int = 16
    """Contexts per forward pass."""
    dtype: str = "float16"
    """Storage dtype: float16, bfloat16 or float32."""
    shard_tokens: int = 131072
    """Rows per shard file."""
    corpus: str = "default"
    """The corpus spec, recorded in meta.json."""
    extra: dict = field(default_factory=dict)
    """More fields for meta.json."""


def bos_id(tokenizer) -> int:
    """The token that starts every document segment (BOS, else EOS)."""
    tid = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if tid is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start documents with")
    return tid


def pack(docs: Iterable[Doc], tokenizer,
         context_len: int) -> Iterator[tuple[list[int], list[int], list[int], dict[str, int]]]:
    """Fixed-length contexts ``(token_ids, doc_ids, positions, tokens per source)`` from documents.

    ``positions`` is the offset inside the document's segment in this context; 0 is the BOS token.
    """
    if context_len < 8:
        raise ValueError(f"context_len {context_len} is too short; use at least 8")
    bos = bos_id(tokenizer)
    ids: list[int] = []
    docs_of: list[int] = []
    pos: list[int] = []
    counts: dict[str, int] = {}
    for d, doc in enumerate(docs):
        toks = tokenizer(doc.text, add_special_tokens=False)["input_ids"]
        i = 0
        while True:
            ids.append(bos)
            docs_of.append(d)
            pos.append(0)
            take = toks[i:i + context_len - len(ids)]
            ids.extend(take)
            docs_of.extend([d] * len(take))
            pos.extend(range(1, len(take) + 1))
            counts[doc.source] = counts.get(doc.source, 0) + len(take) + 1
            i += len(take)
            if len(ids) >= context_len:
                yield ids, docs_of, pos, counts
                ids, docs_of, pos, counts = [], [], [], {}
            if i >= len(toks):
                break


def capture(model, docs: Iterable[Doc], out: str | Path, config: CaptureConfig,
            progress: Callable[[int, int], None] | None = None) -> ActivationStore:
    """Capture activations of ``config.layers`` over ``docs`` into the store at ``out`` (resumable).

    Args:
        model: an in-process :class:`~alignlab.models.hf.HFModel` (white-box).
        docs: the corpus (see :mod:`alignlab.interp.corpus`).
        out: store directory; an incomplete store with the same settings is resumed.
        config: what to capture.
        progress: called with ``(tokens done, token budget)``.
    """
    import torch

    hf, lm, tok = hf_parts(model)
    layers = check_layers(lm, config.layers)
    bad = [s for s in config.sites if s not in SITES]
    if bad:
        raise ValueError(f"--sites: {bad} unknown; use {', '.join(SITES)}")
    keys = [f"{s}.{l}" for s in config.sites for l in layers]
    d_model = lm.config.get_text_config().hidden_size
    meta = {"model": hf.identity, "layers": layers, "sites": list(config.sites), "d_model": d_model,
            "dtype": config.dtype, "corpus": config.corpus, "context_len": config.context_len,
            "tokens_target": config.tokens, "bos_token_id": bos_id(tok), **config.extra}
    writer = ActivationWriter(out, meta, shard_tokens=config.shard_tokens)
    counts: dict[str, int] = dict(writer.meta.get("tokens_by_source", {}))
    skip = writer.n_contexts
    body = base_model(lm)
    device = next(lm.parameters()).device
    started, fresh = time.perf_counter(), 0

    def batches() -> Iterator[list]:
        batch, seen = [], 0
        for ctx in pack(docs, tok, config.context_len):
            seen += 1
            if seen <= skip:
                continue
            batch.append(ctx)
            if len(batch) == config.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    with torch.inference_mode():
        for batch in batches():
            if writer.n_tokens >= config.tokens:
                break
            ids = torch.tensor([c[0] for c in batch], device=device)
            got: dict[str, torch.Tensor] = {}
            read = {k: (lambda t, k=k, got=got: got.__setitem__(k, t)) for k in keys}
            with hooks(lm, read=read, stop_after=layers[-1]):
                body(input_ids=ids, use_cache=False)
            flat = {k: v.reshape(-1, d_model) for k, v in got.items()}
            token_ids, doc_ids, positions = (list(chain.from_iterable(c[j] for c in batch))
                                             for j in range(3))
            writer.add(flat, token_ids, doc_ids, positions, contexts=len(batch))
            for c in batch:
                for src, n in c[3].items():
                    counts[src] = counts.get(src, 0) + n
            fresh += ids.numel()
            if progress:
                progress(min(writer.n_tokens, config.tokens), config.tokens)
            writer.meta["tokens_by_source"] = counts
    elapsed = time.perf_counter() - started
    writer.meta["capture_tokens_per_s"] = round(fresh / elapsed, 1) if fresh else None
    writer.close(complete=writer.n_tokens >= config.tokens)
    return ActivationStore(out)
