"""OpenAI-compatible backend: POST {base_url}/chat/completions via httpx (e.g. llama.cpp server)."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from mindcommons.errors import ConfigError, MindcommonsError, PrerequisiteError
from mindcommons.models.base import GenerateConfig, Generation, Message, Usage

BASE_URL_ENV = "MINDCOMMONS_OPENAI_BASE_URL"
API_KEY_ENV = "MINDCOMMONS_OPENAI_API_KEY"
_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


def estimate_tokens(text: str) -> int:
    """Documented fallback when a server reports no usage: about 4 tokens per 3 words."""
    return len(text.split()) * 4 // 3


class OpenAICompatModel:
    """A chat model behind an OpenAI-compatible HTTP API (``/chat/completions``)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 300.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        extra_body: dict[str, Any] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not model:
            raise ConfigError("an OpenAI-compatible model needs a name: use 'openai/<model-name>'")
        url = base_url or os.environ.get(BASE_URL_ENV, "")
        if not url:
            raise ConfigError(
                f"no base URL for the OpenAI-compatible backend: pass base_url or set "
                f"{BASE_URL_ENV} (e.g. http://127.0.0.1:8000/v1)"
            )
        self.model = model
        self.base_url = url.rstrip("/")
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        # Server-specific request fields, e.g. {"repeat_penalty": 1.0} for llama.cpp's server.
        self.extra_body = dict(extra_body or {})
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client: httpx.Client | None = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )
        self._schema_mode = "json_schema"  # downgraded to json_object if the server refuses

    @property
    def name(self) -> str:
        return f"openai/{self.model}"

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        if self._client is None:
            raise ConfigError("this model backend was closed; load it again with load_model()")
        url = f"{self.base_url}/chat/completions"
        for attempt in range(self.retries + 1):
            try:
                return self._client.post(url, json=body)
            except _RETRYABLE as err:
                if attempt == self.retries:
                    raise PrerequisiteError(
                        f"cannot reach the model server at {self.base_url} ({err}); "
                        f"start it or fix {BASE_URL_ENV}"
                    ) from err
                time.sleep(self.backoff * 2**attempt)
            except httpx.TimeoutException as err:
                raise PrerequisiteError(
                    f"the model server at {self.base_url} did not answer in time ({err})"
                ) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _body(self, messages: list[Message], config: GenerateConfig) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self.extra_body,
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "seed": config.seed,
        }
        if config.stop:
            body["stop"] = list(config.stop)
        if config.json_schema is not None:
            if self._schema_mode == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": config.json_schema},
                }
            else:  # llama.cpp's server reads "schema" here; others fall back to plain JSON
                body["response_format"] = {"type": "json_object", "schema": config.json_schema}
        return body

    def generate(self, messages: list[Message], config: GenerateConfig) -> Generation:
        start = time.perf_counter()
        response = self._post(self._body(messages, config))
        if (
            config.json_schema is not None
            and self._schema_mode == "json_schema"
            and self._refused_schema(response)
        ):
            self._schema_mode = "json_object"
            response = self._post(self._body(messages, config))
        seconds = time.perf_counter() - start
        self._raise_for_status(response)
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise MindcommonsError(
                f"the model server at {self.base_url} sent an answer that is not an "
                f"OpenAI chat completion ({err!r}): {response.text[:200]}"
            ) from err
        usage = data.get("usage") or {}
        metadata: dict[str, str] = {}
        if "prompt_tokens" in usage and "completion_tokens" in usage:
            result = Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
        else:
            prompt = "\n".join(m.content for m in messages)
            result = Usage(estimate_tokens(prompt), estimate_tokens(text))
            metadata["usage"] = "estimated"
        return Generation(
            text=text,
            usage=result,
            model=str(data.get("model") or self.model),
            seconds=seconds,
            finish_reason=choice.get("finish_reason") or "stop",
            metadata=metadata,
        )

    @staticmethod
    def _refused_schema(response: httpx.Response) -> bool:
        """Did the server reject ``json_schema``? (llama.cpp's server answers 500 for that.)"""
        if response.is_success:
            return False
        return response.status_code in (400, 422) or "response_format" in response.text

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        detail = response.text[:300]
        where = f"{self.base_url}/chat/completions"
        if response.status_code in (401, 403):
            raise ConfigError(
                f"{where} refused the API key (HTTP {response.status_code}); "
                f"set {API_KEY_ENV}: {detail}"
            )
        if response.status_code < 500:
            raise ConfigError(
                f"{where} rejected the request (HTTP {response.status_code}); check the model "
                f"name '{self.model}' and the options: {detail}"
            )
        raise PrerequisiteError(
            f"the model server at {where} failed (HTTP {response.status_code}): {detail}"
        )

    def describe(self) -> dict[str, str]:
        return {"backend": "openai", "base_url": self.base_url, "model": self.model}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
