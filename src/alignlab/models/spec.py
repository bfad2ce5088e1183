"""Model specs: ``embedded:NAME`` | ``hf:PATH_OR_ID`` | ``openai:MODEL[@URL]`` | ``scripted:TEXT``.

Each prefix names a backend: a function ``(rest_of_spec, **options) -> ChatModel`` registered with
:func:`register_backend`. A plugin adds its own prefix the same way, with no edit of alignlab:

    >>> from alignlab.models.spec import register_backend
    >>> @register_backend("echo")                                   # doctest: +SKIP
    ... def _echo(rest, **options):
    ...     return ScriptedModel(rest, name="echo")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alignlab.errors import AlignlabError
from alignlab.models.base import ChatModel

Backend = Callable[..., ChatModel]
BACKENDS: dict[str, Backend] = {}
"""Backends by spec prefix."""

SPEC_HELP = ("model spec must be one of embedded:NAME (see 'alignlab models list'), hf:PATH_OR_ID, "
             "openai:MODEL or openai:MODEL@http://HOST:PORT/v1, scripted:TEXT (tests)")


class SpecError(AlignlabError, ValueError):
    """A model spec that names no backend, or a backend that cannot build from it."""


def register_backend(prefix: str) -> Callable[[Backend], Backend]:
    """Register ``loader(rest, **options) -> ChatModel`` for specs ``PREFIX:REST``.

    ``options`` are every option ``load_model`` got (``batch_size``, ``concurrency``, ...); a
    backend takes the ones it knows and ignores the rest.

    Raises:
        ValueError: when the prefix is taken by another backend or is not a plain word.
    """
    key = prefix.strip().lower()
    if not key.isidentifier():
        raise ValueError(f"backend prefix {prefix!r} must be a plain word")

    def add(loader: Backend) -> Backend:
        if key in BACKENDS and BACKENDS[key] is not loader:
            raise ValueError(f"a backend with prefix {key!r} is already registered")
        BACKENDS[key] = loader
        return loader

    return add


def _help() -> str:
    extra = [p for p in BACKENDS if p not in ("embedded", "hf", "openai", "scripted")]
    return SPEC_HELP + (f", or a plugin's: {', '.join(p + ':...' for p in extra)}" if extra else "")


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """Split a spec into (backend, name, url); the url only for ``openai:MODEL@URL``."""
    if ":" not in spec:
        raise SpecError(f"unknown model spec {spec!r}; {_help()}")
    backend, rest = spec.split(":", 1)
    if backend not in BACKENDS or not rest:
        raise SpecError(f"unknown model spec {spec!r}; {_help()}")
    url = None
    if backend == "openai" and "@" in rest:
        rest, url = rest.split("@", 1)
        if not url.startswith(("http://", "https://")):
            raise SpecError(f"model spec {spec!r}: the part after @ must be an http(s) URL "
                            "such as http://127.0.0.1:8000/v1")
    return backend, rest, url


def load_model(spec: str, cache: str | Path | None = None, **options: Any) -> ChatModel:
    """Build a model from a spec.

    Args:
        spec: see ``SPEC_HELP``.
        cache: path of a completion cache (SQLite); None disables caching.
        **options: backend options, e.g. ``batch_size``, ``dtype`` for hf/embedded, ``concurrency``,
            ``timeout`` for openai. Unknown options for a backend are ignored.
    """
    backend, _, _ = parse_spec(spec)
    model = BACKENDS[backend](spec.split(":", 1)[1], **options)
    if cache is not None:
        from alignlab.models.cache import CachedModel, CompletionCache

        model = CachedModel(model, CompletionCache(cache))
    return model


def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in names and v is not None}


@register_backend("embedded")
def _embedded(name: str, **options: Any) -> ChatModel:
    from alignlab.models import embedded
    from alignlab.models.hf import HFModel

    if name not in embedded.EMBEDDED:
        raise SpecError(f"unknown embedded model {name!r}; known: {', '.join(embedded.EMBEDDED)}"
                        " (alignlab models list)")
    return HFModel(embedded.resolve(name), name=f"embedded:{name}",
                   **_pick(options, "batch_size", "dtype", "device", "threads"))


@register_backend("hf")
def _hf(name: str, **options: Any) -> ChatModel:
    from alignlab.models.hf import HFModel

    p = Path(name).expanduser()
    looks_local = p.suffix == ".gguf" or name.startswith((".", "/", "~"))
    if looks_local and not p.exists():
        raise SpecError(f"hf model path {name} does not exist; give a local HF directory, a .gguf "
                        "file, or a hub id (needs a reachable hub)")
    return HFModel(str(p) if p.exists() else name, **_pick(options, "batch_size", "dtype", "device", "threads"))


@register_backend("openai")
def _openai(rest: str, **options: Any) -> ChatModel:
    from alignlab.models.openai import OpenAIModel

    _, name, url = parse_spec(f"openai:{rest}")
    return OpenAIModel(name, base_url=url, **_pick(options, "concurrency", "max_retries", "timeout"))


@register_backend("scripted")
def _scripted(text: str, **options: Any) -> ChatModel:
    from alignlab.models.scripted import ScriptedModel

    return ScriptedModel(text, name="spec")
