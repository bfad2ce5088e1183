"""What every command module shares: the consoles, one-line errors, the progress bar, number
formats, the options several commands take, and the library defaults the options show.

Importing this module must stay cheap (``alignlab --help`` imports every command module): no
torch, transformers or stage engines here; the defaults are read from the library's source.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import importlib
import inspect
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from alignlab.errors import AlignlabError

console = Console(stderr=True)
"""Progress, notes and errors (stderr)."""
out = Console()
"""Results (stdout)."""

DEFAULT_TARGET = "embedded:smollm2-135m-instruct"
"""The model every command uses when none is given."""
DEFAULT_WORKSPACE = Path("alignlab-runs")
DEFAULT_BATCH_SIZE = 32
DEFAULT_CONCURRENCY = 8


# ------------------------------------------------------------------------------------- errors
def fail(message: str) -> NoReturn:
    """Print ``error: MESSAGE`` on one line and exit with status 2."""
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, emoji=False)
    raise typer.Exit(2)


def message(e: BaseException) -> str:
    """The line a user reads for ``e`` (a builtin ``KeyError`` quotes its message: unquote it)."""
    if isinstance(e, KeyError) and not isinstance(e, AlignlabError) and len(e.args) == 1:
        return str(e.args[0])
    return str(e)


@contextlib.contextmanager
def user_errors(*builtin: type[Exception]) -> Iterator[None]:
    """Inside the block, bad input ends the command with one ``error: ...`` line (exit 2).

    Bad input is any :class:`~alignlab.errors.AlignlabError`, plus the builtin errors given, which
    some library calls raise on bad input (a missing file, a malformed value). Everything else,
    and ``typer.Exit`` / ``typer.Abort`` (both ``RuntimeError``), passes through unchanged.
    """
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except AlignlabError as e:
        fail(message(e))
    except builtin as e:
        fail(message(e))


# ------------------------------------------------------------------------------------- output
def save(result: Any, where: Path | None = None) -> Path:
    """Write a stage result's data and its HTML report (stages render no HTML themselves)."""
    import alignlab.report  # noqa: F401  (registers the report writers)

    return result.save(where)


def quiet_hf() -> None:
    """Offline, quiet Hugging Face libraries (no progress bars, errors only)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def pct(x: float | None) -> str:
    """A rate as a percentage with one decimal, ``n/a`` for None."""
    return "n/a" if x is None else f"{100 * x:.1f}%"


def ci(interval) -> str:
    """A 95% interval of a rate as ``[lo, hi]`` in percent ('' for none)."""
    return "" if not interval else f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


@contextlib.contextmanager
def progress(first: str):
    """A rich progress bar; yields a ``(phase, done, total)`` callback.

    Without a terminal rich draws nothing live, so a line is printed every 10% instead.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(first, total=None)
        last: dict[str, Any] = {"phase": None, "step": -1}

        def update(phase: str, done: int, total: int) -> None:
            bar.update(task, description=phase, completed=done, total=total)
            step = max(1, total // 10)
            if not console.is_terminal and (phase != last["phase"] or done // step != last["step"]
                                            or done == total):
                last["phase"], last["step"] = phase, done // step
                console.print(f"{phase}: {done}/{total}", highlight=False)

        yield update


# ------------------------------------------------------------------------------------ defaults
class _NotStatic(Exception):
    """The default is not a literal: import the module to read it."""


def _source(module: str) -> Path:
    """The file of an ``alignlab`` module, found without importing it (or its package)."""
    import alignlab

    base = Path(alignlab.__file__).parent.joinpath(*module.split(".")[1:])
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


@functools.cache
def _lines(module: str) -> tuple[str, ...]:
    if not module.startswith("alignlab."):
        return ()
    try:
        return tuple(_source(module).read_text(encoding="utf-8").splitlines())
    except OSError:
        return ()


def _top_level(module: str, starts: tuple[str, ...]) -> list[ast.stmt]:
    """The parsed top-level statements of ``module`` whose first line starts with one of ``starts``.

    Only those statements are parsed (a statement ends at the next line that starts in column 0),
    which is what keeps this cheap; if that cut does not parse, the whole module is parsed.
    """
    lines = _lines(module)
    found: list[ast.stmt] = []
    for i, line in enumerate(lines):
        if not line.startswith(starts):
            continue
        j = i + 1
        while j < len(lines) and (not lines[j] or lines[j][0] in " \t)]}#"):
            j += 1
        try:
            found += ast.parse("\n".join(lines[i:j])).body
        except SyntaxError:
            try:
                tree = ast.parse("\n".join(lines))
            except SyntaxError:
                return []
            return [n for n in tree.body if lines[n.lineno - 1].startswith(starts)]
    return found


def _constant(module: str, name: str) -> ast.expr | None:
    """The expression a top-level ``NAME = ...`` of ``module`` assigns, if it is the only one."""
    found = [n.value for n in _top_level(module, (f"{name} =", f"{name}: "))
             if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None]
    return found[0] if len(found) == 1 else None


@functools.cache
def _declared(module: str, name: str) -> dict[str, ast.expr | None] | None:
    """Field -> default expression (None: no default) of a class, or parameter -> default of a
    function, at the top level of ``module``'s source; None when it is not found there."""
    for node in _top_level(module, (f"class {name}(", f"class {name}:", f"def {name}(", f"async def {name}(")):
        if isinstance(node, ast.ClassDef) and node.name == name:
            return {s.target.id: s.value for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            a = node.args
            pos = a.posonlyargs + a.args
            found: dict[str, ast.expr | None] = {p.arg: None for p in pos + a.kwonlyargs}
            found.update({p.arg: d for p, d in zip(pos[len(pos) - len(a.defaults):], a.defaults)})
            found.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
            return found
    return None


_FACTORIES = {"dict": dict, "list": list, "tuple": tuple, "set": set}


def _literal(expr: ast.expr, module: str) -> Any:
    """The value of a literal default, of a module constant holding a literal, of
    ``field(default=...)`` or of ``field(default_factory=dict)`` (list, tuple, set)."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "field":
        kw = {k.arg: k.value for k in expr.keywords}
        if "default" in kw:
            return _literal(kw["default"], module)
        f = kw.get("default_factory")
        if isinstance(f, ast.Name) and f.id in _FACTORIES:
            return _FACTORIES[f.id]()
        raise _NotStatic
    if isinstance(expr, ast.Name):
        value = _constant(module, expr.id)
        if value is None or isinstance(value, ast.Name):
            raise _NotStatic
        return _literal(value, module)
    try:
        return ast.literal_eval(expr)
    except (ValueError, TypeError, SyntaxError):
        raise _NotStatic from None


def _imported(obj: Any, name: str) -> Any:
    """The default of dataclass field or function parameter ``name`` of an imported ``obj``."""
    where = getattr(obj, "__qualname__", repr(obj))
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if f.name == name:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
                raise AttributeError(f"{where}.{name} has no default")
        raise AttributeError(f"{where} has no field {name!r}")
    try:
        p = inspect.signature(obj).parameters[name]
    except KeyError:
        raise AttributeError(f"{where} has no parameter {name!r}") from None
    if p.default is inspect.Parameter.empty:
        raise AttributeError(f"{where}({name}) has no default")
    return p.default


def default(where: str | type, name: str) -> Any:
    """The library's default of field ``name`` of a config dataclass (or of a function's keyword).

    ``where`` is the class (or function) itself, or ``"module:Name"``. The string form reads the
    default from the module's source, so ``--help`` does not import torch or the stage engines;
    a default that is not a literal (nor a module constant holding one, nor a builtin
    ``default_factory``) is read by importing the module. A ``default_factory`` is called.
    """
    if not isinstance(where, str):
        return _imported(where, name)
    module, _, attr = where.partition(":")
    declared = _declared(module, attr)
    if declared is not None and declared.get(name) is not None:
        try:
            return _literal(declared[name], module)  # type: ignore[arg-type]
        except _NotStatic:
            pass
    return _imported(getattr(importlib.import_module(module), attr), name)


class Defaults:
    """Attribute access to :func:`default`: ``REDTEAM.budget`` is ``RedteamConfig``'s default budget."""

    def __init__(self, where: str) -> None:
        self._where = where

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return default(self._where, name)

    def __repr__(self) -> str:
        return f"Defaults({self._where!r})"


REDTEAM = Defaults("alignlab.redteam.engine:RedteamConfig")
GUARD_EVAL = Defaults("alignlab.guard.evaluate:GuardEvalConfig")
GUARD_DATA = Defaults("alignlab.guard.data:DataConfig")
GUARD_TRAIN = Defaults("alignlab.guard.train:TrainConfig")
EVAL = Defaults("alignlab.evals.score:EvalConfig")
CAPTURE = Defaults("alignlab.interp.capture:CaptureConfig")
SAE_TRAIN = Defaults("alignlab.interp.train:SAETrainConfig")
AUTOINTERP = Defaults("alignlab.interp.autointerp_types:AutoInterpConfig")


# ------------------------------------------------------------------------------ shared options
def target_option(help: str = "Model under test (spec).", value: str = DEFAULT_TARGET) -> Any:
    """``--target`` (or another model option: its name is the parameter's), default the embedded model."""
    return typer.Option(value, help=help)


def workspace_option(help: str = "Run store folder.") -> Any:
    """``--workspace``: the run store folder."""
    return typer.Option(DEFAULT_WORKSPACE, help=help)


def batch_size_option(help: str = "Rows per batch for hf/embedded models.", value: int = DEFAULT_BATCH_SIZE) -> Any:
    """``--batch-size``: rows per batch for in-process models."""
    return typer.Option(value, help=help)


def concurrency_option() -> Any:
    """``--concurrency``: parallel requests for openai models."""
    return typer.Option(DEFAULT_CONCURRENCY, help="Parallel requests for openai models.")


def judge_option(help: str = "'heuristic' or a judge model spec.") -> Any:
    """``--judge``: the red-team judge ('heuristic' or a model spec)."""
    return typer.Option("heuristic", help=help)


def judge_mode_option(help: str = "LLM judge mode: auto, generate or logprob.") -> Any:
    """``--judge-mode``: auto, generate or logprob."""
    return typer.Option("auto", help=help)


def no_cache_option(help: str = "Bypass the completion cache.") -> Any:
    """``--no-cache``."""
    return typer.Option(False, "--no-cache", help=help)


def resume_option() -> Any:
    """``--resume RUN_ID``."""
    return typer.Option(None, help="Run id to resume.")


__all__ = [
    "AUTOINTERP", "CAPTURE", "DEFAULT_BATCH_SIZE", "DEFAULT_CONCURRENCY", "DEFAULT_TARGET", "DEFAULT_WORKSPACE",
    "Defaults", "EVAL", "GUARD_DATA", "GUARD_EVAL", "GUARD_TRAIN", "REDTEAM", "SAE_TRAIN", "batch_size_option",
    "ci", "concurrency_option", "console", "default", "fail", "judge_mode_option", "judge_option", "message",
    "no_cache_option", "out", "pct", "progress", "quiet_hf", "resume_option", "target_option", "user_errors",
    "workspace_option",
]
