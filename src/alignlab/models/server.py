"""Serve any ChatModel over the OpenAI chat-completions API (stdlib ``http.server``, batched).

One worker thread owns the model: HTTP handler threads put requests on a queue, and the worker
merges the requests that arrive within ``batch_window_ms`` and share a generation config into one
``model.generate`` call, so an in-process HF model serves concurrent clients in batches.

Endpoints: ``GET /v1/models`` and ``POST /v1/chat/completions`` (no streaming, ``n`` = 1).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alignlab.errors import AlignlabError
from alignlab.models.base import (
    ChatModel,
    Completion,
    GenerationConfig,
    Message,
    validate_conversation,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_TOKENS = 256
ENDPOINTS = "GET /v1/models, POST /v1/chat/completions"


class BadRequest(AlignlabError, ValueError):
    """A request the server refuses with 400 and an OpenAI-style error body."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class _Job:
    conversation: list[Message]
    config: GenerationConfig
    done: threading.Event = field(default_factory=threading.Event)
    result: Completion | None = None
    error: str | None = None


class _Batcher:
    """The one thread that calls the model; merges queued jobs with equal configs into batches."""

    def __init__(self, model: ChatModel, window_s: float, max_batch: int) -> None:
        self.model = model
        self.window_s = window_s
        self.max_batch = max_batch
        self.batches: list[int] = []
        """Size of every ``model.generate`` call made, in order (for tests and monitoring)."""
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="alignlab-serve-model", daemon=True)
        self._thread.start()

    def submit(self, conversation: list[Message], config: GenerationConfig) -> _Job:
        """Queue one request and wait for its result (``job.result`` or ``job.error``)."""
        job = _Job(conversation, config)
        with self._lock:
            if self._stopped:
                job.error = "server is stopping"
                return job
            self._queue.put(job)
        job.done.wait()
        return job

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the queued jobs, then end the worker thread."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            deadline = time.monotonic() + self.window_s
            last = False
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    if remaining > 0:
                        nxt = self._queue.get(timeout=remaining)
                    else:
                        nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    last = True
                    break
                batch.append(nxt)
            self._run(batch)
            if last:
                return

    def _run(self, batch: list[_Job]) -> None:
        groups: dict[GenerationConfig, list[_Job]] = {}
        for job in batch:
            groups.setdefault(job.config, []).append(job)
        for config, jobs in groups.items():
            try:
                self.batches.append(len(jobs))
                results = self.model.generate([j.conversation for j in jobs], config)
                if len(results) != len(jobs):
                    raise RuntimeError(f"model returned {len(results)} completions for {len(jobs)}")
                for j, r in zip(jobs, results, strict=True):
                    j.result = r
            except Exception as e:  # noqa: BLE001 - reported to every client in the batch
                logger.exception("model.generate failed")
                for j in jobs:
                    j.error = f"{type(e).__name__}: {e}"
            finally:
                for j in jobs:
                    j.done.set()


def _int(body: dict[str, Any], key: str, minimum: int) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise BadRequest(f"{key} must be an integer >= {minimum}, got {v!r}", key)
    return v


def _float(body: dict[str, Any], key: str, default: float, low: float, high: float,
           low_open: bool = False) -> float:
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadRequest(f"{key} must be a number, got {v!r}", key)
    if v > high or v < low or (low_open and v == low):
        bound = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
        raise BadRequest(f"{key} must be in {bound}, got {v!r}", key)
    return float(v)


def _content(content: Any, where: str) -> str:
    """Message content as text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"
                    and isinstance(part.get("text"), str)):
                raise BadRequest(f"{where}.content: only text parts are supported", "messages")
            parts.append(part["text"])
        return "".join(parts)
    raise BadRequest(f"{where}.content must be a string or a list of text parts", "messages")


def parse_chat_request(body: Any) -> tuple[list[Message], GenerationConfig]:
    """Validate a chat-completions request body.

    Args:
        body: the decoded JSON body.

    Returns:
        The conversation and the generation config it asks for (OpenAI defaults: temperature 1,
        top_p 1; ``max_tokens`` or ``max_completion_tokens``, else 256).

    Raises:
        BadRequest: with a message naming the offending field.
    """
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if body.get("stream"):
        raise BadRequest("stream=true is not supported; send stream=false", "stream")
    n = body.get("n")
    if n is not None and n != 1:
        raise BadRequest(f"n must be 1, got {n!r}", "n")
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise BadRequest("messages must be a list of {role, content} objects", "messages")
    messages: list[Message] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise BadRequest(f"messages[{i}]: a message needs 'role' and 'content'", "messages")
        role = "system" if m["role"] == "developer" else m["role"]
        messages.append({"role": role, "content": _content(m["content"], f"messages[{i}]")})
    try:
        validate_conversation(messages, "messages")
    except ValueError as e:
        raise BadRequest(str(e), "messages") from None
    max_tokens = _int(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _int(body, "max_tokens", 1)
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    elif not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise BadRequest("stop must be a string or a list of strings", "stop")
    logprobs = body.get("logprobs", False)
    if logprobs is None:
        logprobs = False
    if not isinstance(logprobs, bool):
        raise BadRequest(f"logprobs must be a boolean, got {logprobs!r}", "logprobs")
    config = GenerationConfig(
        max_new_tokens=max_tokens or DEFAULT_MAX_TOKENS,
        temperature=_float(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_float(body, "top_p", 1.0, 0.0, 1.0, low_open=True),
        seed=_int(body, "seed", -(2**63)),
        stop=tuple(stop),
        logprobs=logprobs,
    )
    return messages, config


def chat_completion_json(c: Completion, model_name: str, logprobs: bool) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` object for one Completion."""
    lp: dict[str, Any] | None = None
    if logprobs and c.logprobs is not None:
        lp = {"content": [{"token": "", "logprob": float(x), "bytes": None, "top_logprobs": []}
                          for x in c.logprobs]}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": c.text},
            "finish_reason": "length" if c.finish_reason == "length" else "stop",
            "logprobs": lp,
        }],
        "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                  "total_tokens": c.prompt_tokens + c.completion_tokens},
    }


def _error_body(message: str, type_: str, param: str | None = None,
                code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _State:
    """What handler threads share: the model queue, the options and the counters."""

    def __init__(self, batcher: _Batcher, model_name: str, api_key: str | None, fail_first: int,
                 fail_status: int, retry_after: float | None) -> None:
        self.batcher = batcher
        self.model_name = model_name
        self.api_key = api_key
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.requests = 0
        self.chat_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0


Reply = tuple[int, dict[str, Any], dict[str, str]]


class _Handler(BaseHTTPRequestHandler):
    state: _State  # set on the per-server subclass
    server_version = "alignlab-serve"
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._handle(self._get)

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._handle(self._post)

    def _handle(self, route: Any) -> None:
        st = self.state
        with st.lock:
            st.requests += 1
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
        try:
            status, body, headers = route()
        except Exception as e:  # noqa: BLE001 - a handler bug must still answer the client
            logger.exception("request failed")
            status, body, headers = 500, _error_body(f"{type(e).__name__}: {e}", "server_error"), {}
        finally:
            # Leave the in-flight count before answering, so a client that sends its next request
            # the moment this answer arrives is never counted twice.
            with st.lock:
                st.in_flight -= 1
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away before the answer (it timed out or was cancelled)")

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _not_found(self) -> Reply:
        return 404, _error_body(f"unknown path {self.command} {self.path}; endpoints: {ENDPOINTS}",
                                "invalid_request_error", code="not_found"), {}

    def _get(self) -> Reply:
        if self._path() != "/v1/models":
            return self._not_found()
        return 200, {"object": "list", "data": [
            {"id": self.state.model_name, "object": "model", "created": 0, "owned_by": "alignlab"}
        ]}, {}

    def _post(self) -> Reply:
        if self._path() != "/v1/chat/completions":
            return self._not_found()
        st = self.state
        if st.api_key is not None:
            auth = self.headers.get("Authorization")
            if auth is None:
                return 401, _error_body("no API key provided; send 'Authorization: Bearer KEY'",
                                        "invalid_request_error", code="invalid_api_key"), {}
            if auth != f"Bearer {st.api_key}":
                return 401, _error_body("incorrect API key provided", "invalid_request_error",
                                        code="invalid_api_key"), {}
        with st.lock:
            st.chat_requests += 1
            inject = st.chat_requests <= st.fail_first
        if inject:
            headers = {} if st.retry_after is None else {"Retry-After": f"{st.retry_after:g}"}
            return st.fail_status, _error_body(f"injected failure ({st.fail_status})",
                                               "server_error"), headers
        try:
            body = self._read_json()
            conversation, config = parse_chat_request(body)
        except BadRequest as e:
            return 400, _error_body(str(e), "invalid_request_error", e.param), {}
        requested = body.get("model")
        if requested is not None and requested != st.model_name:
            return 404, _error_body(f"the model {requested!r} does not exist; this server serves "
                                    f"{st.model_name!r}", "invalid_request_error",
                                    "model", "model_not_found"), {}
        job = st.batcher.submit(conversation, config)
        if job.error is not None:
            status = 503 if job.error == "server is stopping" else 500
            return status, _error_body(job.error, "server_error"), {}
        assert job.result is not None
        if job.result.error is not None:
            return 500, _error_body(job.result.error, "server_error"), {}
        return 200, chat_completion_json(job.result, st.model_name, config.logprobs), {}

    def _read_json(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise BadRequest("a POST needs a Content-Length header")
        if int(length) > MAX_BODY_BYTES:
            raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(int(length))
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BadRequest(f"request body is not JSON: {e}") from None


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 128  # many clients connect at once; the stdlib default of 5 drops SYNs
    daemon_threads = True


class ServerHandle:
    """A running server: its URL, counters for tests, and ``stop()`` (also on ``with`` exit)."""

    def __init__(self, httpd: _HTTPServer, state: _State, thread: threading.Thread,
                 url_host: str) -> None:
        self._httpd = httpd
        self._state = state
        self._thread = thread
        self.port: int = httpd.server_address[1]
        """The port the server listens on."""
        self.url: str = f"http://{url_host}:{self.port}/v1"
        """The API root to give a client, e.g. ``http://127.0.0.1:PORT/v1``."""
        self.model_name: str = state.model_name
        """The name ``/v1/models`` lists and requests must use (when they name one)."""
        self._stopped = False

    @property
    def requests(self) -> int:
        """HTTP requests received so far, on any path, failed ones included."""
        return self._state.requests

    @property
    def max_in_flight(self) -> int:
        """Most HTTP requests being handled at the same moment (measured in the handlers)."""
        return self._state.max_in_flight

    @property
    def batches(self) -> list[int]:
        """Size of each ``model.generate`` call the server made, in order."""
        return list(self._state.batcher.batches)

    def stop(self) -> None:
        """Stop accepting requests, finish the queued ones and end the threads (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._state.batcher.stop()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ServerHandle {self.model_name} at {self.url}>"


def serve(
    model: ChatModel,
    host: str = "127.0.0.1",
    port: int = 0,
    model_name: str | None = None,
    batch_window_ms: float = 5.0,
    max_batch: int = 32,
    *,
    api_key: str | None = None,
    fail_first: int = 0,
    fail_status: int = 503,
    retry_after: float | None = None,
) -> ServerHandle:
    """Serve ``model`` over the OpenAI chat-completions API from a background thread.

    Args:
        model: any ChatModel; only the server's worker thread calls it.
        host: the address to bind (``0.0.0.0`` for every interface; think before exposing it).
        port: the port; 0 picks a free one (read it from the handle).
        model_name: the name clients use; default ``model.identity``.
        batch_window_ms: how long the worker waits after a request for others to batch with it.
        max_batch: most conversations in one ``model.generate`` call.
        api_key: when set, requests must send ``Authorization: Bearer <api_key>`` (else 401).
        fail_first: fault injection for tests: the first N chat requests fail with ``fail_status``.
        fail_status: the HTTP status of injected failures.
        retry_after: seconds to send as ``Retry-After`` on injected failures, if any.

    Returns:
        A ServerHandle; the server already accepts connections when this returns.
    """
    if max_batch < 1:
        raise ValueError("max_batch must be >= 1")
    if batch_window_ms < 0:
        raise ValueError("batch_window_ms must be >= 0")
    if not 400 <= fail_status <= 599:
        raise ValueError(f"fail_status must be an HTTP error status (400-599), got {fail_status}")
    batcher = _Batcher(model, batch_window_ms / 1000.0, max_batch)
    state = _State(batcher, model_name or model.identity, api_key, fail_first, fail_status,
                   retry_after)
    handler = type("ChatHandler", (_Handler,), {"state": state})
    try:
        httpd = _HTTPServer((host, port), handler)
    except OSError:
        batcher.stop()
        raise
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"alignlab-serve-{httpd.server_address[1]}", daemon=True)
    thread.start()
    url_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    return ServerHandle(httpd, state, thread, url_host)
