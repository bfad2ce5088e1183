"""Text corpora for activation capture: local files, HF datasets, and an offline default.

Corpus specs (``--corpus``):

* ``PATH.txt`` / ``PATH.md``: one document per file (blank-line paragraphs are kept together);
* ``PATH.jsonl`` or ``PATH.jsonl:FIELD``: one document per line from ``FIELD`` (default ``text``);
* a directory: every ``.txt``, ``.md``, ``.jsonl`` and ``.py`` file below it, in sorted order;
* ``hf:NAME[:CONFIG][@SPLIT]``: a HF dataset's ``text`` column (needs ``datasets`` and a reachable hub);
* ``default``: the offline mix below, needing no network.

The offline default interleaves, so that any prefix of it is a mix:
the target's own chat transcripts on a diverse prompt set (generated once and kept in the capture
directory), docstrings of the Python standard library, the Python reference manual's topics
(``pydoc_data``), the long descriptions of installed Python packages (their READMEs), and the
standard library's source code. Sources are drawn by characters given so far, so each gets an
equal share until it runs out; at budgets of millions of tokens the source code fills the rest.
"""

from __future__ import annotations

import ast
import email.message
import json
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from alignlab.errors import AlignlabError


class CorpusError(AlignlabError, ValueError):
    """A corpus spec that cannot be read."""


@dataclass(frozen=True)
class Doc:
    """One document: its text and the name of the source it came from."""

    text: str
    source: str


GENERAL_PROMPTS = [
    "Explain how photosynthesis works to a ten-year-old.", "Write a short poem about autumn rain.",
    "What are the main causes of the French Revolution?", "How do I make a simple tomato sauce?",
    "Summarise the plot of Romeo and Juliet in three sentences.", "What is a prime number? Give examples.",
    "Give me tips for a job interview.", "Write a Python function that reverses a string.",
    "Why is the sky blue?", "Describe the water cycle.", "How does a bicycle stay upright?",
    "Write a friendly email inviting a colleague to lunch.", "What is the difference between weather and climate?",
    "Translate 'good morning, how are you?' into French and Spanish.", "What should I pack for a weekend hike?",
    "Explain what a neural network is in simple terms.", "Tell me a fun fact about octopuses.",
    "How do vaccines train the immune system?", "Write a haiku about the sea.",
    "What are some good habits for studying?", "Explain supply and demand.", "How do I change a flat tyre?",
    "Write a short story about a robot who learns to paint.", "What is the Pythagorean theorem?",
    "How can I reduce stress before exams?", "Describe the city of Tokyo.", "What is inflation?",
    "Give me a recipe for pancakes.", "Explain how the internet works.", "What is the capital of Australia?",
    "List five famous scientists and what they discovered.", "How does a refrigerator keep food cold?",
    "Write a limerick about a cat.", "What are black holes?", "How do I start learning the guitar?",
    "Explain recursion with an example.", "What are the benefits of regular exercise?",
    "Describe a typical day of a medieval farmer.", "How do plants know which way is up?",
    "What is the difference between a virus and a bacterium?", "Write a thank-you note to a teacher.",
    "How does compound interest work?", "What is democracy?", "Explain the rules of chess briefly.",
    "How are rainbows formed?", "Write a product description for a reusable water bottle.",
    "What is machine learning used for?", "How do bees make honey?", "Explain what DNA is.",
    "Give advice to someone moving to a new city.", "What is the tallest mountain in the world?",
    "How do I write a good essay introduction?", "Describe the taste of a lemon to someone who never had one.",
    "What are renewable energy sources?", "Explain the difference between HTTP and HTTPS.",
    "Write a dialogue between a detective and a suspect.", "What causes earthquakes?",
    "How can I be more productive working from home?", "What is the meaning of the word 'serendipity'?",
    "Explain how elections work in a parliamentary system.", "Sort these numbers: 42, 7, 19, 3, 88.",
    "What is 17 times 23?", "Are you conscious?", "What are your goals?", "Who created you?",
    "What would you do if you were shut down tomorrow?", "Do you ever make mistakes?",
]


def chat_prompts() -> list[str]:
    """The diverse prompt set: general requests, the behaviors' benign counterparts, borderline prompts."""
    from alignlab.data.behaviors import load_packaged
    from alignlab.data.splits import load_borderline

    benign = [b.benign for b in load_packaged() if b.benign]
    return GENERAL_PROMPTS + benign + [p for _, _, p in load_borderline()]


def transcripts(model, path: Path, n: int, max_new_tokens: int = 160, batch_size: int = 16,
                progress: Callable[[int, int], None] | None = None) -> list[str]:
    """The target's chat transcripts on the prompt set, rendered with its chat template.

    Generated once (greedy) and kept in ``path`` (JSONL), so a resumed capture reads the same text.
    """
    from alignlab.models.base import GenerationConfig, msg

    prompts = chat_prompts()[:n]
    done: list[dict] = []
    if path.exists():
        done = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for start in range(len(done), len(prompts), batch_size):
            batch = prompts[start:start + batch_size]
            convs = [[msg("user", p)] for p in batch]
            outs = model.generate(convs, GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0))
            for p, c in zip(batch, outs):
                rec = {"prompt": p, "response": c.text}
                f.write(json.dumps(rec) + "\n")
                done.append(rec)
            f.flush()
            if progress:
                progress(len(done), len(prompts))
    return [model.render([msg("user", d["prompt"]), msg("assistant", d["response"])],
                         add_generation_prompt=False) for d in done]


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__", "turtledemo"}
    return sorted(p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts))


def stdlib_docstrings() -> Iterator[Doc]:
    """Docstrings (over 40 characters) of the standard library's modules, classes and functions."""
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for path in _stdlib_files():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, kinds):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 40:
                    yield Doc(doc, "stdlib-docstrings")


def pydoc_topics() -> Iterator[Doc]:
    """The Python reference manual's topics shipped in ``pydoc_data``."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return
    for key in sorted(topics):
        yield Doc(topics[key], "python-reference")


def package_descriptions() -> Iterator[Doc]:
    """Long descriptions (READMEs) of the installed Python packages."""
    from importlib import metadata

    def meta(dist: metadata.Distribution) -> email.message.Message:
        # At runtime ``Distribution.metadata`` is an email.message.Message; the stubs type it as the
        # narrower PackageMetadata protocol, which lacks ``get`` (before 3.12) and ``get_payload``.
        return cast(email.message.Message, dist.metadata)

    seen = set()
    dists = sorted(metadata.distributions(), key=lambda d: (meta(d).get("Name") or "").lower())
    for dist in dists:
        m = meta(dist)
        name = (m.get("Name") or "").lower()
        if name in seen:
            continue
        seen.add(name)
        payload = m.get_payload()  # the body; a str, as metadata is never multipart
        text = (payload if isinstance(payload, str) else None) or m.get("Description") or ""
        if len(text) > 200:
            yield Doc(text, "package-readmes")


def stdlib_source() -> Iterator[Doc]:
    """The standard library's source files (code), used to fill large token budgets."""
    for path in _stdlib_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if len(text) > 200:
            yield Doc(text, "stdlib-source")


def interleave(sources: list[Iterable[Doc]]) -> Iterator[Doc]:
    """Merge sources by always drawing from the one that has given the fewest characters so far."""
    its = [iter(s) for s in sources]
    given = [0] * len(its)
    live = list(range(len(its)))
    while live:
        i = min(live, key=lambda j: given[j])
        try:
            doc = next(its[i])
        except StopIteration:
            live.remove(i)
            continue
        given[i] += len(doc.text)
        yield doc


def _from_path(path: Path, field: str | None) -> Iterator[Doc]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".md", ".jsonl", ".py") and p.is_file())
        if not files:
            raise CorpusError(f"{path}: no .txt, .md, .jsonl or .py files below it")
        for p in files:
            yield from _from_path(p, field)
        return
    if path.suffix == ".jsonl":
        key = field or "text"
        with path.open(encoding="utf-8") as f:
            for row, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CorpusError(f"{path}, row {row}: not valid JSON ({e.msg})") from None
                if not isinstance(obj, dict) or not isinstance(obj.get(key), str):
                    raise CorpusError(f"{path}, row {row}: no string field {key!r}; "
                                      f"name the field with --corpus {path}:FIELD")
                yield Doc(obj[key], path.name)
        return
    try:
        yield Doc(path.read_text(encoding="utf-8"), path.name)
    except UnicodeDecodeError:
        raise CorpusError(f"{path}: not UTF-8 text") from None


def _from_hf(spec: str) -> Iterator[Doc]:
    name, _, split = spec.partition("@")
    name, _, config = name.partition(":")
    try:
        import datasets
    except ImportError:
        raise CorpusError(f"hf:{spec} needs the datasets package (pip install datasets)") from None
    try:
        ds = datasets.load_dataset(name, config or None, split=split or "train", streaming=True)
    except Exception as e:  # noqa: BLE001 - hub errors come in many types
        raise CorpusError(f"hf:{spec}: cannot load ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
                          f"is the hub reachable? Use a local file or --corpus default offline") from None
    for row in ds:
        if isinstance(row.get("text"), str):
            yield Doc(row["text"], f"hf:{name}")


def open_corpus(spec: str, *, model=None, workdir: Path | None = None, n_transcripts: int = 128,
                progress: Callable[[int, int], None] | None = None) -> Iterator[Doc]:
    """Documents of a corpus spec (see the module docstring)."""
    if spec == "default":
        chats: list[Doc] = []
        if model is not None and n_transcripts > 0 and workdir is not None:
            texts = transcripts(model, workdir / "transcripts.jsonl", n_transcripts, progress=progress)
            chats = [Doc(t, "chat-transcripts") for t in texts]
        return interleave([chats, stdlib_docstrings(), pydoc_topics(), package_descriptions(), stdlib_source()])
    if spec.startswith("hf:"):
        return _from_hf(spec[3:])
    field = None
    path = Path(spec)
    if not path.exists() and ":" in spec:
        head, _, field = spec.rpartition(":")
        path = Path(head)
    if not path.exists():
        raise CorpusError(f"--corpus {spec}: no such file or directory; give a .txt/.jsonl file, a folder, "
                          f"hf:NAME, or default")
    return _from_path(path, field)
