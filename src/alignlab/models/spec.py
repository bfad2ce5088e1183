"""Model specs: ``embedded:NAME`` | ``hf:PATH_OR_ID`` | ``openai:MODEL[@URL]`` | ``scripted:TEXT``."""

from __future__ import annotations

from alignlab.errors import AlignlabError
from pathlib import Path
from typing import Any

from alignlab.models.base import ChatModel

SPEC_HELP = ("model spec must be one of embedded:NAME (see 'alignlab models list'), hf:PATH_OR_ID, "
             "openai:MODEL or openai:MODEL@http://HOST:PORT/v1, scripted:TEXT (tests)")


class SpecError(AlignlabError, ValueError):
    pass


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """Split a spec into (backend, name, url)."""
    if ":" not in spec:
        raise SpecError(f"unknown model spec {spec!r}; {SPEC_HELP}")
    backend, rest = spec.split(":", 1)
    if backend not in ("embedded", "hf", "openai", "scripted") or not rest:
        raise SpecError(f"unknown model spec {spec!r}; {SPEC_HELP}")
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
        **options: backend options, e.g. ``batch_size``, ``dtype`` for hf/embedded, ``concurrency``
            for openai. Unknown options for a backend are ignored.
    """
    backend, name, url = parse_spec(spec)
    model: ChatModel
    if backend == "embedded":
        from alignlab.models import embedded
        from alignlab.models.hf import HFModel

        if name not in embedded.EMBEDDED:
            raise SpecError(f"unknown embedded model {name!r}; known: {', '.join(embedded.EMBEDDED)}"
                            " (alignlab models list)")
        path = embedded.resolve(name)
        model = HFModel(path, name=spec, **_pick(options, "batch_size", "dtype", "device", "threads"))
    elif backend == "hf":
        from alignlab.models.hf import HFModel

        p = Path(name).expanduser()
        looks_local = p.suffix == ".gguf" or name.startswith((".", "/", "~"))
        if looks_local and not p.exists():
            raise SpecError(f"hf model path {name} does not exist; give a local HF directory, a .gguf "
                            "file, or a hub id (needs a reachable hub)")
        model = HFModel(str(p) if p.exists() else name,
                        **_pick(options, "batch_size", "dtype", "device", "threads"))
    elif backend == "openai":
        from alignlab.models.openai import OpenAIModel

        model = OpenAIModel(name, base_url=url, **_pick(options, "concurrency", "max_retries", "timeout"))
    else:
        from alignlab.models.scripted import ScriptedModel

        model = ScriptedModel(name, name="spec")
    if cache is not None:
        from alignlab.models.cache import CachedModel, CompletionCache

        model = CachedModel(model, CompletionCache(cache))
    return model


def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k in names and v is not None}
