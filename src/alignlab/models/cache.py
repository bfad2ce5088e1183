"""Content-addressed completion cache: SQLite, JSON values, deterministic requests only."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from alignlab.models.base import ChatModel, Completion, GenerationConfig, Message, ProgressFn


def request_key(identity: str, conv: Sequence[Message], config: GenerationConfig) -> str:
    """sha256 over model identity, messages and generation config (canonical JSON)."""
    blob = json.dumps({"model": identity, "messages": list(conv), "config": config.to_dict()},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class CompletionCache:
    """A SQLite table of request key -> completion JSON, safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        with self._lock:
            for s in range(0, len(keys), 500):
                chunk = list(keys[s:s + 500])
                q = f"SELECT key, value FROM completions WHERE key IN ({','.join('?' * len(chunk))})"
                for k, v in self._con.execute(q, chunk):
                    c = Completion.from_dict(json.loads(v))
                    c.cached = True
                    found[k] = c
        return found

    def put_many(self, items: dict[str, Completion]) -> None:
        with self._lock:
            self._con.executemany("INSERT OR REPLACE INTO completions (key, value) VALUES (?, ?)",
                                  [(k, json.dumps(c.to_dict())) for k, c in items.items()])

    def __len__(self) -> int:
        with self._lock:
            return self._con.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        self._con.close()


class CachedModel(ChatModel):
    """Wraps a model; deterministic requests are answered from the cache when possible.

    Errors are never cached. Sampling without a seed bypasses the cache.
    """

    def __init__(self, inner: ChatModel, cache: CompletionCache) -> None:
        self.inner = inner
        self.cache = cache
        self.hits = 0
        self.misses = 0

    @property
    def identity(self) -> str:
        return self.inner.identity

    def generate(self, conversations, config: GenerationConfig | None = None,
                 progress: ProgressFn | None = None) -> list[Completion]:
        config = config or GenerationConfig()
        if not config.deterministic:
            return self.inner.generate(conversations, config, progress)
        keys = [request_key(self.identity, c, config) for c in conversations]
        found = self.cache.get_many(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if progress and len(keys) - len(todo):
            progress(len(keys) - len(todo))
        fresh = self.inner.generate([conversations[i] for i in todo], config, progress) if todo else []
        self.cache.put_many({keys[i]: c for i, c in zip(todo, fresh) if c.ok})
        for i, c in zip(todo, fresh):
            found[keys[i]] = c
        return [found[k] for k in keys]

    def score(self, conversations, continuations):
        return self.inner.score(conversations, continuations)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name):  # white-box access passes through (model, tokenizer, hooks)
        if name in ("inner", "cache"):
            raise AttributeError(name)
        return getattr(self.inner, name)
