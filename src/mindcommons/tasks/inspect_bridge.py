"""inspect_ai integration: a ``mindcommons`` model provider wrapping any ModelBackend,
a Task built from EvalItems, and a scorer that stores SampleResults in Score.metadata.

Imported only when a task runs through inspect_ai (``run_local``): inspect_ai is heavy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import anyio.to_thread
from inspect_ai import Task, eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    get_model,
    modelapi,
)
from inspect_ai.model import GenerateConfig as InspectConfig
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer
from inspect_ai.solver import TaskState, generate
from inspect_ai.tool import ToolChoice, ToolInfo

from mindcommons.errors import MindcommonsError
from mindcommons.models.base import GenerateConfig, Generation, Message, ModelBackend, Usage
from mindcommons.tasks.base import EvalItem, SampleResult
from mindcommons.tasks.spec import TaskSpec

PROVIDER = "mindcommons"
# Settings that keep inspect_ai local and silent (set only where not already set).
QUIET_ENV = {"INSPECT_DISPLAY": "none", "INSPECT_NO_ANSI": "1", "INSPECT_LOG_LEVEL": "warning"}


@dataclass(frozen=True)
class _Handle:
    """A backend and the JSON schema of each prompt (keyed by ``prompt_key``)."""

    backend: ModelBackend
    json_schema: dict[str, object] | None
    schemas: dict[str, dict[str, object]] = dataclasses.field(default_factory=dict)

    def schema_for(self, messages: list[Message]) -> dict[str, object] | None:
        return self.schemas.get(prompt_key(messages), self.json_schema)


def prompt_key(messages: list[Message]) -> str:
    """A digest of a prompt: the per-item schema travels with the handle under it."""
    data = json.dumps([[m.role, m.content] for m in messages], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


# In-process backends, keyed by the ``handle`` model arg. inspect_ai builds the
# provider from a name and plain model args, so live objects are passed this way.
_HANDLES: dict[str, _Handle] = {}


def _to_message(message: ChatMessage) -> Message:
    if isinstance(message, ChatMessageSystem):
        return Message("system", message.text)
    if isinstance(message, ChatMessageAssistant):
        return Message("assistant", message.text)
    return Message("user", message.text)


@modelapi(name=PROVIDER)
class MindcommonsModelAPI(ModelAPI):
    """Runs a mindcommons ModelBackend; reports its own token usage (no tiktoken)."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: InspectConfig = InspectConfig(),  # noqa: B008 (inspect_ai's own signature)
        handle: str = "",
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        if handle not in _HANDLES:
            raise MindcommonsError(f"no model backend registered under handle '{handle}'")
        self._handle = _HANDLES[handle]

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: InspectConfig,
    ) -> ModelOutput:
        messages = [_to_message(m) for m in input]
        ours = GenerateConfig(
            max_tokens=config.max_tokens or GenerateConfig.max_tokens,
            temperature=config.temperature or 0.0,
            seed=config.seed or 0,
            stop=tuple(config.stop_seqs or ()),
            json_schema=self._handle.schema_for(messages),
        )
        gen = await anyio.to_thread.run_sync(self._handle.backend.generate, messages, ours)
        output = ModelOutput.from_content(
            model=gen.model,
            content=gen.text,
            stop_reason="max_tokens" if gen.finish_reason == "length" else "stop",
        )
        output.usage = ModelUsage(
            input_tokens=gen.usage.input_tokens,
            output_tokens=gen.usage.output_tokens,
            total_tokens=gen.usage.total_tokens,
        )
        # inspect_ai overwrites output.time with its own clock; keep the backend's
        output.metadata = {"seconds": gen.seconds}
        return output

    async def count_text_tokens(self, text: str) -> int:
        # inspect's default uses tiktoken (downloads encodings); a rough local estimate.
        return max(1, len(text) // 4)

    def max_connections(self) -> int:
        return 1


def _item_from_metadata(metadata: dict[str, Any]) -> EvalItem:
    fields = {f.name: metadata[f.name] for f in dataclasses.fields(EvalItem)}
    fields["true_items"] = tuple(fields["true_items"])
    return EvalItem(**fields)


def result_from_metadata(metadata: dict[str, Any]) -> SampleResult:
    """Rebuild a SampleResult from the fields a Score.metadata carries."""
    fields = {f.name: metadata[f.name] for f in dataclasses.fields(SampleResult)}
    for name in ("true_items", "predicted_items", "evidence_verbatim"):
        fields[name] = tuple(fields[name])
    return SampleResult(**fields)


def _scorer(spec: TaskSpec, on_scored: Callable[[], None]) -> Scorer:
    @scorer(metrics=[mean()], name=f"{spec.name}_total_abs_error")
    def score_items() -> Scorer:
        async def score(state: TaskState, target: Target) -> Score:
            output = state.output
            usage = output.usage or ModelUsage()
            generation = Generation(
                text=output.completion,
                usage=Usage(usage.input_tokens, usage.output_tokens),
                model=output.model,
                seconds=float((output.metadata or {}).get("seconds", output.time or 0.0)),
            )
            result = spec.score(_item_from_metadata(state.metadata), generation)
            on_scored()
            return Score(
                value=abs(result.predicted_total - result.true_total),
                answer=" ".join("-" if v is None else str(v) for v in result.predicted_items),
                metadata=dataclasses.asdict(result),
            )

        return score

    return score_items()


def _samples(spec: TaskSpec, items: Sequence[EvalItem]) -> list[Sample]:
    samples: list[Sample] = []
    seen: set[str] = set()
    for position, item in enumerate(items):
        sample_id = item.document_id
        if sample_id in seen:  # inspect_ai needs unique ids
            sample_id = f"{sample_id}#{position}"
        seen.add(sample_id)
        samples.append(
            Sample(
                id=sample_id,
                input=[_to_inspect(m) for m in spec.build_messages(item)],
                target=str(item.true_total),
                metadata=dataclasses.asdict(item),
            )
        )
    return samples


def _to_inspect(message: Message) -> ChatMessage:
    if message.role == "system":
        return ChatMessageSystem(content=message.content)
    if message.role == "assistant":
        return ChatMessageAssistant(content=message.content)
    return ChatMessageUser(content=message.content)


@cache
def _quiet_environment() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def run_inspect(
    spec: TaskSpec,
    items: Sequence[EvalItem],
    model: ModelBackend,
    *,
    log_dir: Path,
    progress: Callable[[int, int], None] | None,
    seed: int,
) -> list[SampleResult]:
    """Evaluate ``items`` with inspect_ai.eval, offline and silent; logs go to ``log_dir``."""
    _quiet_environment()
    config = spec.generate_config(seed)
    handle = uuid.uuid4().hex
    schemas = {
        prompt_key(spec.build_messages(item)): spec.output_schema_for(item) for item in items
    }
    _HANDLES[handle] = _Handle(model, config.json_schema, schemas)
    done = [0]

    def on_scored() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(items))

    inspect_config = InspectConfig(
        max_tokens=config.max_tokens, temperature=config.temperature, seed=config.seed
    )
    task = Task(
        dataset=MemoryDataset(_samples(spec, items), name=spec.name),
        solver=generate(),
        scorer=_scorer(spec, on_scored),
        config=inspect_config,
        name=spec.name,
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        inspect_model = get_model(
            f"{PROVIDER}/{model.name}", config=inspect_config, memoize=False, handle=handle
        )
        logs = eval(
            task,
            model=inspect_model,
            log_dir=str(log_dir),
            display="none",
            max_samples=1,
            max_connections=1,
            max_tasks=1,
            sandbox=None,
            score_display=False,
            log_realtime=False,  # no sample buffer (with text) in inspect's user data dir
            ctl_server=False,  # no control-channel socket
            acp_server=False,
            fail_on_error=True,
        )
    finally:
        _HANDLES.pop(handle, None)
    log = logs[0]
    if log.status != "success" or log.samples is None:
        reason = log.error.message if log.error is not None else log.status
        raise MindcommonsError(f"task '{spec.name}' failed under inspect_ai: {reason}")
    by_id: dict[str | int, SampleResult] = {}
    for sample in log.samples:
        score = next(iter((sample.scores or {}).values()), None)
        if score is None or score.metadata is None:
            raise MindcommonsError(f"task '{spec.name}': sample {sample.id} was not scored")
        by_id[sample.id] = result_from_metadata(score.metadata)
    return [by_id[s.id] for s in task.dataset if s.id is not None]
