"""On-disk activation stores: sharded safetensors with token ids and document offsets.

Layout of a store directory::

    meta.json                    model, layers, sites, dtype, shards, complete flag
    shard-00000.safetensors      "resid.6", "mlp_out.6", ... [n, d_model]; "token_ids" int32 [n];
                                 "doc_ids" int64 [n] (source document); "positions" int32 [n]
                                 (offset in the document's segment of its context; 0 = the BOS
                                 token that starts every segment)

Layer ``L`` is the residual stream after decoder block ``L`` (SAELens ``blocks.L.hook_resid_post``,
HF ``output_hidden_states[L + 1]``). Shards are written whole (temp file, then rename) and
``meta.json`` is rewritten after each one (with the count of whole contexts written), so a
killed capture resumes at the last shard.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from alignlab.errors import AlignlabError

FORMAT = "alignlab-acts/1"
DTYPES = ("float16", "bfloat16", "float32")
HOLDOUT_EVERY = 20
"""Every 20th context (index % 20 == 19) is held out: SAEs train on the rest and are measured on it."""
SPLITS = ("all", "train", "heldout")


class ActsError(AlignlabError, ValueError):
    """A missing or malformed activation store."""


def _torch_dtype(name: str):
    import torch

    if name not in DTYPES:
        raise ActsError(f"dtype {name!r} is not one of {', '.join(DTYPES)}")
    return getattr(torch, name)


class ActivationWriter:
    """Appends activations shard by shard; reopening an incomplete store resumes it.

    Args:
        path: store directory.
        meta: fields describing the capture (model, layers, sites, d_model, dtype, corpus, ...).
            On resume they must match what is on disk (except the token target).
        shard_tokens: rows per shard.
    """

    def __init__(self, path: str | Path, meta: dict, shard_tokens: int = 65536) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.shard_tokens = shard_tokens
        self.dtype = _torch_dtype(meta.get("dtype", "float16"))
        meta_file = self.path / "meta.json"
        if meta_file.exists():
            old = json.loads(meta_file.read_text())
            for key in ("model", "layers", "sites", "d_model", "dtype", "corpus", "context_len"):
                if key in meta and old.get(key) != meta[key]:
                    raise ActsError(f"{meta_file}: {key} is {old.get(key)!r} on disk but {meta[key]!r} "
                                    f"was asked; use a new --out or the same settings to resume")
            old.update({k: v for k, v in meta.items() if k not in old or k == "tokens_target"})
            self.meta = old
        else:
            self.meta = {"format": FORMAT, **meta, "n_tokens": 0, "n_docs": 0, "shards": [],
                         "complete": False}
        self._buf: dict[str, list] = {}
        self._rows = 0
        self._contexts = 0

    @property
    def n_tokens(self) -> int:
        """Tokens on disk plus tokens buffered."""
        return self.meta["n_tokens"] + self._rows

    @property
    def n_contexts(self) -> int:
        """Contexts (forward-pass rows) written to disk; a resumed capture skips this many."""
        return self.meta.get("n_contexts", 0)

    def add(self, acts: dict, token_ids, doc_ids, positions, contexts: int = 1) -> None:
        """Buffer rows (one per token) of ``contexts`` whole contexts; flush whole shards."""
        import torch

        for key, value in acts.items():
            self._buf.setdefault(key, []).append(value.detach().to(self.dtype).cpu())
        self._buf.setdefault("token_ids", []).append(torch.as_tensor(token_ids, dtype=torch.int32))
        self._buf.setdefault("doc_ids", []).append(torch.as_tensor(doc_ids, dtype=torch.int64))
        self._buf.setdefault("positions", []).append(torch.as_tensor(positions, dtype=torch.int32))
        self._rows += len(token_ids)
        self._contexts += contexts
        if self._rows >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows as one shard and update meta.json."""
        import torch
        from safetensors.torch import save_file

        if not self._rows:
            return
        tensors = {k: torch.cat(v).contiguous() for k, v in self._buf.items()}
        name = f"shard-{len(self.meta['shards']):05d}.safetensors"
        tmp = self.path / (name + ".tmp")
        save_file(tensors, str(tmp))
        os.replace(tmp, self.path / name)
        docs = tensors["doc_ids"]
        contexts = int(self._contexts)
        self.meta["shards"].append({"file": name, "n_tokens": self._rows, "n_contexts": contexts,
                                    "first_doc": int(docs[0]), "last_doc": int(docs[-1])})
        self.meta["n_tokens"] += self._rows
        self.meta["n_contexts"] = self.meta.get("n_contexts", 0) + contexts
        self.meta["n_docs"] = int(docs[-1]) + 1
        self._contexts = 0
        self._buf, self._rows = {}, 0
        self._write_meta()

    def close(self, complete: bool = True) -> None:
        """Flush and mark the store complete (or leave it resumable)."""
        self.flush()
        self.meta["complete"] = complete
        self._write_meta()

    def _write_meta(self) -> None:
        tmp = self.path / "meta.json.tmp"
        tmp.write_text(json.dumps(self.meta, indent=1))
        os.replace(tmp, self.path / "meta.json")


class ActivationStore:
    """Reads a store written by :class:`ActivationWriter` (or ``alignlab interp capture``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.exists():
            raise ActsError(f"{self.path}: no meta.json; is this the --out of `alignlab interp capture`?")
        try:
            self.meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as e:
            raise ActsError(f"{meta_file}: not valid JSON ({e.msg}, line {e.lineno})") from None
        if self.meta.get("format") != FORMAT:
            raise ActsError(f"{meta_file}: format is {self.meta.get('format')!r}, expected {FORMAT!r}")
        if not self.meta["shards"]:
            raise ActsError(f"{self.path}: holds no shards yet; run the capture (it resumes)")
        self._tokens = None

    @property
    def layers(self) -> list[int]:
        return list(self.meta["layers"])

    @property
    def sites(self) -> list[str]:
        return list(self.meta["sites"])

    @property
    def d_model(self) -> int:
        return int(self.meta["d_model"])

    @property
    def n_tokens(self) -> int:
        return int(self.meta["n_tokens"])

    def keys(self) -> list[str]:
        """Activation keys, e.g. ``["resid.6", "resid.15"]``."""
        return [f"{s}.{l}" for s in self.sites for l in self.layers]

    def split_mask(self, start: int, stop: int, split: str):
        """Bool mask of rows ``start:stop`` that belong to ``split`` (contexts are whole rows)."""
        import torch

        if split not in SPLITS:
            raise ActsError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        rows = torch.arange(start, stop)
        if split == "all":
            return torch.ones(len(rows), dtype=torch.bool)
        held = (rows // int(self.meta["context_len"])) % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
        return held if split == "heldout" else ~held

    def check_key(self, key: str) -> None:
        if key not in self.keys():
            raise ActsError(f"{self.path}: no activations {key!r}; it holds {', '.join(self.keys())}")

    def _shard(self, i: int):
        from safetensors import safe_open

        return safe_open(str(self.path / self.meta["shards"][i]["file"]), framework="pt")

    def tokens(self):
        """``(token_ids, doc_ids, positions)`` over the whole store, int64 tensors (read once)."""
        import torch

        if self._tokens is not None:
            return self._tokens
        parts = [[], [], []]
        for i in range(len(self.meta["shards"])):
            with self._shard(i) as f:
                for j, name in enumerate(("token_ids", "doc_ids", "positions")):
                    parts[j].append(f.get_tensor(name).long())
        self._tokens = tuple(torch.cat(p) for p in parts)
        return self._tokens

    def load(self, key: str, start: int = 0, stop: int | None = None, dtype: str = "float32",
             split: str = "all", skip_positions: int = 0):
        """Rows ``start:stop`` of one activation key, concatenated across shards.

        ``split`` keeps only train or held-out contexts; ``skip_positions=1`` drops BOS rows.
        """
        import torch

        self.check_key(key)
        stop = self.n_tokens if stop is None else min(stop, self.n_tokens)
        out, offset = [], 0
        for i, sh in enumerate(self.meta["shards"]):
            lo, hi = offset, offset + sh["n_tokens"]
            offset = hi
            if hi <= start or lo >= stop:
                continue
            a, b = max(start - lo, 0), min(stop, hi) - lo
            with self._shard(i) as f:
                part = f.get_slice(key)[a:b]
                keep = self.split_mask(lo + a, lo + b, split)
                if skip_positions:
                    keep &= f.get_slice("positions")[a:b] >= skip_positions
            out.append(part[keep].to(_torch_dtype(dtype)))
        return torch.cat(out) if out else torch.empty(0, self.d_model, dtype=_torch_dtype(dtype))

    def batches(self, keys: Sequence[str], batch_size: int, *, shuffle_buffer: int = 262144,
                seed: int = 0, max_tokens: int | None = None, skip_positions: int = 1,
                epochs: int = 1, split: str = "all") -> Iterator[dict]:
        """Shuffled float32 batches; every key gets the same rows (several layers in one pass).

        Shards are visited in a seeded random order and read into a buffer of about
        ``shuffle_buffer`` rows, which is permuted and cut into batches. Rows at context positions
        below ``skip_positions`` (the BOS / attention-sink token) are dropped. At most
        ``max_tokens`` rows are yielded in total; a last partial batch is dropped. ``split`` keeps
        the train or held-out contexts only (see :data:`HOLDOUT_EVERY`).
        """
        import torch

        for key in keys:
            self.check_key(key)
        gen = torch.Generator().manual_seed(seed)
        left = max_tokens if max_tokens is not None else float("inf")
        for _ in range(epochs):
            order = torch.randperm(len(self.meta["shards"]), generator=gen).tolist()
            offsets = [0]
            for sh in self.meta["shards"]:
                offsets.append(offsets[-1] + sh["n_tokens"])
            buf: dict[str, list] = {k: [] for k in keys}
            rows = 0
            for n, i in enumerate(order):
                with self._shard(i) as f:
                    keep = f.get_tensor("positions") >= skip_positions
                    keep &= self.split_mask(offsets[i], offsets[i + 1], split)
                    for k in keys:
                        buf[k].append(f.get_tensor(k)[keep])
                rows += int(keep.sum())
                if rows < shuffle_buffer and n < len(order) - 1:
                    continue
                cat = {k: torch.cat(v) for k, v in buf.items()}
                perm = torch.randperm(rows, generator=gen)
                usable = (rows // batch_size) * batch_size
                for s in range(0, usable, batch_size):
                    if left < batch_size:
                        return
                    idx = perm[s:s + batch_size]
                    left -= batch_size
                    yield {k: cat[k][idx].float() for k in keys}
                rest = perm[usable:]
                buf = {k: [cat[k][rest]] for k in keys}
                rows = len(rest)
