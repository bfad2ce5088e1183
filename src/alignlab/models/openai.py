"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server) as a ChatModel.

Requests run concurrently under a semaphore, with exponential backoff on rate limits, server errors,
timeouts and dropped connections. An item that still fails after the retries comes back as an error
``Completion`` (the caller counts it as unscorable); configuration mistakes that no retry can fix
(bad key, unknown model, wrong URL, nothing listening) raise ``RuntimeError`` at once with one line
that says what to fix.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from alignlab.models.base import ChatModel, Completion, GenerationConfig, Message, ProgressFn

if TYPE_CHECKING:
    import httpx

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth retrying: rate limits and transient server errors."""
MAX_BACKOFF_S = 30.0
"""Upper bound on one exponential-backoff sleep."""
MAX_RETRY_AFTER_S = 60.0
"""Upper bound on a server's ``Retry-After`` that we honour."""
KEY_HINT = "set ALIGNLAB_API_KEY or OPENAI_API_KEY (or pass api_key=)"

T = TypeVar("T")


def run_sync(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even when this thread already runs a loop.

    Args:
        make_coro: a zero-argument function returning the coroutine to run.

    Returns:
        The coroutine's result. Without a running loop it runs under ``asyncio.run``; inside one
        (a notebook, an async caller) it runs on a fresh loop in a worker thread, so it never
        deadlocks the caller's loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()  # type: ignore[arg-type]


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _server_message(resp: httpx.Response) -> str:
    """The message in an error body: OpenAI's ``error.message``, Ollama's ``error``, or the text."""
    try:
        data = resp.json()
    except ValueError:
        return _one_line(resp.text)
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return _one_line(str(err))
    return _one_line(resp.text)


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; ``None`` if absent or an HTTP date (not supported)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _connect_reason(exc: BaseException) -> str:
    """Why a connection failed, looking through the chain httpx wraps the OS error in."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    return _one_line(str(exc) or type(exc).__name__)


def _error(message: str) -> Completion:
    return Completion(text="", finish_reason="error", error=message)


def parse_chat_completion(data: Any) -> Completion:
    """Turn an OpenAI ``chat.completion`` JSON body into a Completion.

    Args:
        data: the decoded response body.

    Returns:
        The Completion; ``finish_reason`` is ``"length"`` when the server says so and ``"stop"``
        otherwise; ``logprobs`` holds ``choices[0].logprobs.content[i].logprob`` when present.

    Raises:
        ValueError: the body is not a chat completion.
    """
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise ValueError(f"response has no choices[0].message ({type(e).__name__}: {e})") from None
    if not isinstance(text, str):
        raise ValueError("choices[0].message.content is not a string")
    usage = data.get("usage") or {}
    logprobs = None
    lp = choice.get("logprobs")
    if isinstance(lp, dict) and lp.get("content") is not None:
        logprobs = [float(t["logprob"]) for t in lp["content"]]
    return Completion(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        logprobs=logprobs,
    )


class OpenAIModel(ChatModel):
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint (black-box).

    Args:
        model: the model name the server knows (``gpt-4o-mini``, ``llama3.1:8b``, ...).
        base_url: the API root, ending in ``/v1``; default env ``OPENAI_BASE_URL`` or
            ``https://api.openai.com/v1``.
        api_key: the key; default env ``ALIGNLAB_API_KEY``, else ``OPENAI_API_KEY``, else none
            (local servers need none, and then no ``Authorization`` header is sent). The key is
            kept in memory only: never logged, never part of the identity or repr.
        concurrency: most requests in flight at once.
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts in all).
        timeout: seconds per HTTP request.
        backoff: base of the exponential backoff: ``backoff * 2**attempt`` seconds (capped at 30)
            plus jitter, unless the server sends ``Retry-After``.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        timeout: float = 120.0,
        backoff: float = 1.0,
    ) -> None:
        if not model:
            raise ValueError("model: give the model name the endpoint serves")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        if backoff < 0:
            raise ValueError("backoff must be >= 0")
        self.model = model
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = base_url.rstrip("/")
        self._api_key = (api_key or os.environ.get("ALIGNLAB_API_KEY")
                         or os.environ.get("OPENAI_API_KEY") or None)
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff

    @property
    def identity(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    @property
    def endpoint(self) -> str:
        """The URL requests go to."""
        return f"{self.base_url}/chat/completions"

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        config: GenerationConfig | None = None,
        progress: ProgressFn | None = None,
    ) -> list[Completion]:
        """Generate one reply per conversation, in input order, ``concurrency`` requests at a time.

        Raises:
            RuntimeError: the endpoint rejected the key (401/403), does not know the model or path
                (404), or could not be reached at all (connection refused on every attempt).
        """
        config = config or GenerationConfig()
        if not conversations:
            return []
        bodies = [self._body(conv, config) for conv in conversations]
        return run_sync(lambda: self._generate_all(bodies, progress))

    def score(self, conversations, continuations):
        raise NotImplementedError(
            f"{self.identity} is a black-box endpoint: it cannot score candidate continuations; "
            "use an hf: or embedded: model for log-likelihood scoring")

    def close(self) -> None:
        """Nothing to release: each ``generate`` call opens and closes its own HTTP client."""

    # -- internals -------------------------------------------------------------------------------

    def _body(self, conv: Sequence[Message], config: GenerationConfig) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in conv],
            "max_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
        }
        if config.seed is not None:
            body["seed"] = config.seed
        if config.stop:
            body["stop"] = list(config.stop)
        if config.logprobs:
            body["logprobs"] = True
        return body

    def _scrub(self, text: str) -> str:
        """Remove the key from text a server sent back (some servers echo it in 401 messages)."""
        return text.replace(self._api_key, "***") if self._api_key else text

    async def _generate_all(self, bodies: list[dict[str, Any]],
                            progress: ProgressFn | None) -> list[Completion]:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        sem = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(self.timeout),
                                     limits=limits) as client:

            async def one(body: dict[str, Any]) -> Completion:
                async with sem:
                    result = await self._request(client, body)
                if progress is not None:
                    progress(1)
                return result

            tasks = [asyncio.ensure_future(one(b)) for b in bodies]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                # A fatal error (bad key, unknown model, unreachable) ends the whole call at once.
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        base = min(MAX_BACKOFF_S, self.backoff * 2**attempt)
        return min(MAX_BACKOFF_S, base + random.uniform(0, 0.25 * base))

    async def _request(self, client: httpx.AsyncClient, body: dict[str, Any]) -> Completion:
        import httpx

        unreachable: str | None = None  # reason, while every attempt so far failed to connect
        last_error = ""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            retry_after = None
            try:
                resp = await client.post(self.endpoint, json=body)
            except httpx.ConnectError as e:
                reason = _connect_reason(e)
                if attempt == 0 or unreachable is not None:
                    unreachable = _one_line(reason)
                last_error = f"cannot connect: {_one_line(reason)}"
            except httpx.TimeoutException as e:
                unreachable = None
                last_error = f"timed out after {self.timeout:g} s ({type(e).__name__})"
            except httpx.TransportError as e:
                unreachable = None
                last_error = _one_line(f"{type(e).__name__}: {e}")
            else:
                unreachable = None
                status = resp.status_code
                if status == 200:
                    try:
                        return parse_chat_completion(resp.json())
                    except ValueError as e:
                        return _error(_one_line(f"malformed response from {self.endpoint}: {e}"))
                message = self._scrub(_server_message(resp))
                if status in (401, 403, 404):
                    raise RuntimeError(self._fatal(status, resp.reason_phrase, message)) from None
                last_error = f"HTTP {status} {resp.reason_phrase}: {message}".rstrip(": ")
                if status not in RETRY_STATUSES:
                    return _error(last_error)
                retry_after = _parse_retry_after(resp.headers.get("retry-after"))
            if attempt + 1 < attempts:
                await asyncio.sleep(self._delay(attempt, retry_after))
        if unreachable is not None:
            raise RuntimeError(
                f"cannot reach {self.base_url}: {unreachable}; is the server running?")
        return _error(f"{last_error} (gave up after {attempts} attempts)")

    def _fatal(self, status: int, reason: str, message: str) -> str:
        said = f" ({message})" if message else ""
        head = f"openai endpoint {self.base_url}: {status} {reason}{said}; "
        if status == 401:
            if self._api_key:
                return head + f"the API key was rejected; check it, or {KEY_HINT}"
            return head + f"no API key was sent; {KEY_HINT}"
        if status == 403:
            return head + (f"the API key has no access to model {self.model!r}; "
                           "use another key or model")
        return head + (f"check the model name {self.model!r} "
                       f"(GET {self.base_url}/models lists them) "
                       f"and that the base URL ends in /v1 (POST {self.endpoint})")
