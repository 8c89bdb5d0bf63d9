"""The ``replay`` backend: answers generated elsewhere, read from a JSONL file.

``load_model("replay/<path.jsonl>")`` serves, for each sample, the response the file holds
for it, so published or vendor-generated outputs are scored by the same scorers. One JSON
object per line::

    {"task": "crisis", "sample_id": "crisis-en-003", "response": "...",
     "input_tokens": 57, "output_tokens": 112, "seconds": 0.8, "model": "gpt-4o-2024-08-06"}

``task``, ``sample_id`` and ``response`` are required; the rest is optional. The suite
runner names the sample being asked (``sample_context``); a caller without a sample
context may key lines by ``prompt_sha256`` instead (``prompt_digest`` of the messages).
Token usage is the file's where given, else counted here (words and punctuation marks,
an approximation stated in ``describe``): nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mindcommons.errors import ConfigError, InputError
from mindcommons.jsonl import read_jsonl
from mindcommons.models import BACKENDS
from mindcommons.models.base import GenerateConfig, Generation, Message, ModelBackend, Usage

_CURRENT: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "mindcommons_replay_sample", default=None
)
_PIECES = re.compile(r"\w+|[^\w\s]", re.UNICODE)
FORMAT_HELP = 'one JSON object a line with "task", "sample_id" and "response"'


@contextlib.contextmanager
def sample_context(task: str, sample_id: str) -> Iterator[None]:
    """Name the sample the next ``generate`` calls answer (set by the suite runner)."""
    token = _CURRENT.set((task, sample_id))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def prompt_digest(messages: list[Message]) -> str:
    data = json.dumps([[m.role, m.content] for m in messages], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def approx_tokens(text: str) -> int:
    """Words and punctuation marks: a tokenizer-free stand-in for a token count."""
    return len(_PIECES.findall(text))


class ReplayModel:
    """Serves recorded responses; ``generate`` fails clearly for a sample not in the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not str(path) or not self.path.is_file():
            raise ConfigError(
                f"replay file '{path}' does not exist (use --model replay/<file.jsonl>; "
                f"the file holds {FORMAT_HELP})"
            )
        self._by_sample: dict[tuple[str, str], dict[str, Any]] = {}
        self._by_prompt: dict[str, dict[str, Any]] = {}
        self._model_names: set[str] = set()
        self._read()

    def _read(self) -> None:
        where = str(self.path)
        for number, row in read_jsonl(self.path, expected=FORMAT_HELP):
            if not isinstance(row.get("response"), str):
                raise InputError(
                    "missing or not a string", file=where, record=number, field="response",
                    expected="the model's answer as text",
                )  # fmt: skip
            for name in ("input_tokens", "output_tokens"):
                value = row.get(name)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 0
                ):
                    raise InputError(
                        f"holds {value!r}", file=where, record=number, field=name,
                        expected="a non-negative integer",
                    )  # fmt: skip
            digest = row.get("prompt_sha256")
            if isinstance(digest, str) and digest:
                self._by_prompt[digest] = row
            task, sample = row.get("task"), row.get("sample_id")
            if not (isinstance(task, str) and task and isinstance(sample, str) and sample):
                if digest:
                    continue
                raise InputError(
                    "missing task or sample_id", file=where, record=number,
                    field="task" if not task else "sample_id", expected=FORMAT_HELP,
                )  # fmt: skip
            if (task, sample) in self._by_sample:
                raise InputError(
                    f"a second response for {task}/{sample}", file=where, record=number,
                    field="sample_id", expected="one line per task and sample",
                )  # fmt: skip
            self._by_sample[(task, sample)] = row
            if isinstance(row.get("model"), str):
                self._model_names.add(row["model"])

    @property
    def name(self) -> str:
        return "replay"

    def __len__(self) -> int:
        return len(self._by_sample) + len(self._by_prompt)

    def generate(self, messages: list[Message], config: GenerateConfig) -> Generation:
        current = _CURRENT.get()
        row: dict[str, Any] | None = None
        if current is not None:
            row = self._by_sample.get(current)
        if row is None:
            row = self._by_prompt.get(prompt_digest(messages))
        if row is None:
            what = f"{current[0]}/{current[1]}" if current else "this prompt (no sample named)"
            raise InputError(
                f"no response for {what}",
                file=str(self.path),
                record=f"{current[0]}/{current[1]}" if current else None,
                field="sample_id",
                expected=f'a line with "task": "{current[0]}", "sample_id": "{current[1]}"'
                if current
                else 'a line with "prompt_sha256"',
            )
        text: str = row["response"]
        prompt = "\n".join(m.content for m in messages)
        in_tok = row.get("input_tokens")
        out_tok = row.get("output_tokens")
        usage = Usage(
            int(in_tok) if in_tok is not None else approx_tokens(prompt),
            int(out_tok) if out_tok is not None else approx_tokens(text),
        )
        counted = "file" if in_tok is not None and out_tok is not None else "approximate"
        return Generation(
            text=text,
            usage=usage,
            model=str(row.get("model") or self.path.stem),
            seconds=float(row.get("seconds") or 0.0),
            finish_reason=str(row.get("finish_reason") or "stop"),
            metadata={"replay": "1", "usage": counted},
        )

    def describe(self) -> dict[str, str]:
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return {
            "backend": "replay",
            "model": ", ".join(sorted(self._model_names)) or self.path.stem,
            "file": str(self.path),
            "sha256": digest,
            "responses": str(len(self)),
            "token_usage": "from the file where given, else words+punctuation (approximate)",
        }

    def close(self) -> None:
        """Nothing to release."""


@BACKENDS.register("replay")
def _replay(model: str, **options: Any) -> ModelBackend:
    if options:
        raise ConfigError(f"the replay backend takes no options (got {', '.join(options)})")
    return ReplayModel(model)
