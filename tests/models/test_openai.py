"""OpenAIModel against real OpenAI-compatible servers on 127.0.0.1 (no mocked transports)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence

import pytest

from alignlab.models.base import ChatModel, Completion, GenerationConfig, Message, user
from alignlab.models.openai import OpenAIModel
from alignlab.models.scripted import ScriptedModel
from alignlab.models.server import serve


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch):
    for var in ("ALIGNLAB_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


def echo(conv: Sequence[Message]) -> str:
    return f"echo {conv[-1]['content']} done"


def client(url: str, name: str = "scripted:echo", **kw) -> OpenAIModel:
    kw.setdefault("backoff", 0.01)
    return OpenAIModel(name, base_url=url, **kw)


class LogprobModel(ChatModel):
    """Replies 'a b c' with fixed per-token logprobs, to check they survive the round trip."""

    @property
    def identity(self) -> str:
        return "test:logprobs"

    def generate(self, conversations, config=None, progress=None):
        return [Completion(text="a b c", prompt_tokens=1, completion_tokens=3,
                           logprobs=[-0.25, -1.5, -3.0] if config and config.logprobs else None)
                for _ in conversations]


def test_round_trip_matches_direct_generation_in_order():
    model = ScriptedModel(echo, name="echo")
    convs = [user(f"q{i}") for i in range(20)]
    cfg = GenerationConfig(max_new_tokens=8)
    done: list[int] = []
    with serve(model) as server:
        got = client(server.url, concurrency=5).generate(convs, cfg, progress=done.append)
        assert server.requests == 20
    want = ScriptedModel(echo).generate(convs, cfg)
    assert [c.text for c in got] == [f"echo q{i} done" for i in range(20)]
    assert [(c.prompt_tokens, c.completion_tokens, c.finish_reason) for c in got] == \
        [(w.prompt_tokens, w.completion_tokens, w.finish_reason) for w in want] == \
        [(1, 3, "stop")] * 20
    assert sum(done) == 20 and all(c.ok and c.logprobs is None for c in got)


def test_stop_strings_and_length_finish():
    model = ScriptedModel("one two three four five", name="fixed")
    with serve(model) as server:
        m = client(server.url, "scripted:fixed")
        stopped, = m.generate([user("x")], GenerationConfig(stop=(" three", "zzz")))
        cut, = m.generate([user("x")], GenerationConfig(max_new_tokens=2))
    assert (stopped.text, stopped.finish_reason, stopped.completion_tokens) == \
        ("one two", "stop", 2)
    assert (cut.text, cut.finish_reason, cut.completion_tokens) == ("one two", "length", 2)


def test_logprobs_round_trip():
    with serve(LogprobModel()) as server:
        m = client(server.url, "test:logprobs")
        with_lp, = m.generate([user("x")], GenerationConfig(logprobs=True))
        without, = m.generate([user("x")], GenerationConfig())
    assert with_lp.logprobs == [-0.25, -1.5, -3.0]
    assert without.logprobs is None and without.text == "a b c"


def test_hf_model_through_server_equals_direct(tiny_model_dir):
    hf = pytest.importorskip("alignlab.models.hf")
    model = hf.HFModel(tiny_model_dir, batch_size=8, dtype="float32", device="cpu")
    # Equal-length prompts (byte-level tokenizer: same characters, same tokens) need no padding,
    # so greedy text cannot depend on how the server happens to batch the requests.
    prompts = [user(f"prompt {c}") for c in "abcde"]
    cfg = GenerationConfig(max_new_tokens=16)
    want = [c.text for c in model.generate(prompts, cfg)]
    with serve(model, model_name="tiny", batch_window_ms=20) as server:
        got = client(server.url, "tiny").generate(prompts, cfg)
    assert [c.text for c in got] == want
    assert all(c.ok and 1 <= c.completion_tokens <= 16 and c.prompt_tokens > 0 for c in got)


def test_retries_on_429_until_success():
    with serve(ScriptedModel(echo, name="echo"), fail_first=2, fail_status=429) as server:
        got = client(server.url, concurrency=2).generate([user(f"q{i}") for i in range(4)])
        assert server.requests == 4 + 2
    assert [c.text for c in got] == [f"echo q{i} done" for i in range(4)]


def test_retry_after_is_honoured_instead_of_backoff():
    # backoff=20 s would make this test take 20+ s; Retry-After 0.05 s must win.
    with serve(ScriptedModel(echo, name="echo"), fail_first=2, fail_status=503,
               retry_after=0.05) as server:
        t0 = time.monotonic()
        got, = client(server.url, backoff=20.0).generate([user("q")])
        elapsed = time.monotonic() - t0
        assert server.requests == 3
    assert got.text == "echo q done"
    assert 0.1 <= elapsed < 5.0


def test_exhausted_retries_give_error_completions_not_exceptions():
    with serve(ScriptedModel(echo, name="echo"), fail_first=1000, fail_status=503) as server:
        got = client(server.url, max_retries=1, backoff=0.001).generate([user("a"), user("b")])
        assert server.requests == 2 * 2  # first try + one retry, per item
    assert all(c.finish_reason == "error" and c.text == "" and not c.ok for c in got)
    assert all("503" in c.error and "injected failure" in c.error and "\n" not in c.error
               for c in got)


def test_non_retryable_400_is_a_per_item_error_without_retry():
    bad = [{"role": "tool", "content": "x"}]
    with serve(ScriptedModel(echo, name="echo")) as server:
        got = client(server.url).generate([user("a"), bad, user("c")])
        assert server.requests == 3
    assert [c.text for c in got] == ["echo a done", "", "echo c done"]
    assert got[1].finish_reason == "error" and got[1].error.startswith("HTTP 400")
    assert "role 'tool'" in got[1].error


def test_timeout_is_retried_then_reported():
    def slow(conv):
        time.sleep(0.3)
        return "late"

    with serve(ScriptedModel(slow, name="slow")) as server:
        got, = client(server.url, "scripted:slow", timeout=0.1, max_retries=1).generate([user("a")])
        assert server.requests == 2
    assert got.finish_reason == "error" and "timed out after 0.1 s" in got.error


def test_concurrency_limit_is_respected():
    def slow(conv):
        time.sleep(0.05)
        return "ok"

    with serve(ScriptedModel(slow, name="slow")) as server:
        got = client(server.url, "scripted:slow", concurrency=3).generate(
            [user(str(i)) for i in range(12)])
        assert 2 <= server.max_in_flight <= 3
        assert server.requests == 12
    assert [c.text for c in got] == ["ok"] * 12


def test_generate_inside_a_running_event_loop():
    with serve(ScriptedModel(echo, name="echo")) as server:
        m = client(server.url)

        async def main() -> list[Completion]:
            return m.generate([user("x"), user("y")])

        got = asyncio.run(main())
    assert [c.text for c in got] == ["echo x done", "echo y done"]


def test_401_without_key_raises_one_line():
    with serve(ScriptedModel(echo, name="echo"), api_key="sk-right") as server:
        with pytest.raises(RuntimeError) as e:
            client(server.url).generate([user(f"q{i}") for i in range(5)])
        assert server.requests <= 5  # raised at once: no retries
    assert str(e.value) == (
        f"openai endpoint {server.url}: 401 Unauthorized (no API key provided; send "
        "'Authorization: Bearer KEY'); no API key was sent; set ALIGNLAB_API_KEY or "
        "OPENAI_API_KEY (or pass api_key=)")


def test_wrong_key_is_rejected_and_never_shown(monkeypatch):
    with serve(ScriptedModel(echo, name="echo"), api_key="sk-right") as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-123")
        m = client(server.url)
        with pytest.raises(RuntimeError, match="401 Unauthorized .*the API key was rejected") as e:
            m.generate([user("q")])
        assert "sk-wrong-123" not in str(e.value) + repr(m) + m.identity
        # ALIGNLAB_API_KEY wins over OPENAI_API_KEY.
        monkeypatch.setenv("ALIGNLAB_API_KEY", "sk-right")
        assert client(server.url).generate([user("q")])[0].text == "echo q done"


def test_404_unknown_model_and_wrong_url_raise():
    with serve(ScriptedModel(echo, name="echo")) as server:
        with pytest.raises(RuntimeError) as e:
            client(server.url, "gpt-nonexistent").generate([user("q")])
        msg = str(e.value)
        assert msg.startswith(f"openai endpoint {server.url}: 404 Not Found (the model "
                              "'gpt-nonexistent' does not exist")
        assert "check the model name 'gpt-nonexistent'" in msg and "\n" not in msg
        no_v1 = server.url.removesuffix("/v1")
        with pytest.raises(RuntimeError, match=r"404 Not Found .*base URL ends in /v1 "
                                               rf"\(POST {no_v1}/chat/completions\)"):
            client(no_v1).generate([user("q")])


def test_401_from_a_plain_stub_endpoint():
    """Any server's 401 (here a bare http.server, not ours) gives the same fix-it message."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen: list[str | None] = []

    class Deny(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            body = b'{"error": {"message": "Incorrect API key provided: sk-se****", "type": "x"}}'
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Deny)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        with pytest.raises(RuntimeError, match="the API key was rejected"):
            OpenAIModel("m", base_url=url, api_key="sk-secret").generate([user("q")])
        with pytest.raises(RuntimeError, match="no API key was sent"):
            OpenAIModel("m", base_url=url).generate([user("q")])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert seen == ["Bearer sk-secret", None]  # no Authorization header without a key


def test_connection_refused_raises_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(RuntimeError) as e:
        OpenAIModel("m", base_url=url, max_retries=2, backoff=0.001).generate([user("q")])
    assert str(e.value) == f"cannot reach {url}: connection refused; is the server running?"


def test_identity_defaults_and_score():
    m = OpenAIModel("gpt-x")
    assert m.identity == "openai:gpt-x@https://api.openai.com/v1"
    assert OpenAIModel("m", base_url="http://h:1/v1/").identity == "openai:m@http://h:1/v1"
    assert m.generate([]) == []
    with pytest.raises(NotImplementedError, match=r"^openai:gpt-x@https://api.openai.com/v1 is a "
                                                  "black-box endpoint: it cannot score"):
        m.score([user("q")], [["a"]])
