"""LoRA fine-tuning of the embedded model: data, averaging, export to llama.cpp, backend.

Tiny on purpose (rank 2, 1-2 steps, 3 short notes per site): the quality of adapted
models is measured in ``benchmarks/lora.py``, not here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mindcommons.errors import ConfigError
from mindcommons.ingest import ingest_path
from mindcommons.lora.data import build_examples, site_examples, split_items
from mindcommons.lora.export import ADAPTER_FILE, CARD_FILE, permute_rows, read_adapter
from mindcommons.lora.federated import LoraTrainer, fedavg
from mindcommons.lora.layout import LoraSpec, ModelShape, adapter_layout
from mindcommons.settings import load_settings
from mindcommons.tasks import TASKS
from mindcommons.tasks.base import EvalItem
from mindcommons.tasks.parsing import parse_items

NOTES = {
    "site-a": [
        (
            "en",
            "Reports low mood most days. Sleeps badly nearly every night. Appetite normal.",
            [0, 2, 3, 0, 0, 0, 0, 0, 0],
        ),
        (
            "en",
            "Denies low mood. Poor concentration on several days. No thoughts of death.",
            [0, 0, 0, 0, 0, 0, 1, 0, 0],
        ),
        (
            "es",
            "Refiere ánimo bajo casi todos los días. Cansancio y poca energía a diario.",
            [0, 3, 0, 3, 0, 0, 0, 0, 0],
        ),
    ],
    "site-b": [
        (
            "en",
            "Feels tired with little energy on several days. Enjoys music still.",
            [0, 0, 0, 1, 0, 0, 0, 0, 0],
        ),
        (
            "en",
            "Thoughts of being better off dead on several days. Low mood most days.",
            [0, 2, 0, 0, 0, 0, 0, 0, 1],
        ),
    ],
}
# the last 2 blocks only: backpropagation stops there (a step costs about one forward pass)
PARAMS = {"rank": 2, "alpha": 4.0, "targets": "q,v", "layers": 2, "steps": 1, "lr": 0.02,
          "seed": 0, "max_length": 640, "val_limit": 1, "train_split": "all"}  # fmt: skip


def write_site(home: Path, site: str) -> None:
    lines: list[dict[str, object]] = [{"type": "dataset", "name": f"cohort-{site}"}]
    for n, (lang, text, items) in enumerate(NOTES[site], 1):
        pid = f"{site[-1].upper()}{n:03d}"
        lines += [
            {"type": "participant", "participant_id": pid, "gender": "female",
             "primary_language": lang, "age_band": "25-34", "country": "GB"},
            {"type": "document", "participant_id": pid, "document_id": f"{pid}-note",
             "kind": "clinical_note", "language": lang, "date": "2025-01-10", "text": text,
             "deid_status": "synthetic"},
            {"type": "measure", "participant_id": pid, "instrument": "PHQ-9",
             "date": "2025-01-10", "items": items},
        ]  # fmt: skip
    path = home.parent / "data" / site / "records.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), "utf-8")
    ingest_path(path, site, settings=load_settings(home))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lora") / "home"
    for site in NOTES:
        write_site(root, site)
    return root


# ---------------------------------------------------------------- data (fast)


def test_instruction_data_holds_the_sites_labels_in_the_task_schema(home: Path) -> None:
    settings = load_settings(home)
    examples = site_examples("site-a", settings, split="all")
    spec = TASKS.get("phq9")
    assert len(examples) == 3
    by_text = {text: items for _, text, items in NOTES["site-a"]}
    for example in examples:
        note = example.messages[-1]["content"].removeprefix("Text:\n")
        total = sum(example.true_items)
        item = EvalItem(example.document_id, "p", "clinical_note", "en", "2025-01-10", note,
                        "PHQ-9", "2025-01-10", example.true_items, total)  # fmt: skip
        # exactly the task's prompt: system rule, worked example, the note
        assert [m["content"] for m in example.messages] == [
            m.content for m in spec.build_messages(item)
        ]
        parsed = parse_items(example.answer, 9, 0, 3)
        assert parsed.parsed and list(parsed.scores) == by_text[note]  # the site's labels
        schema = spec.output_schema_for(item)
        entries = schema["properties"]["items"]["prefixItems"]  # type: ignore[index]
        for number, (entry, row) in enumerate(
            zip(entries, json.loads(example.answer)["items"], strict=True), 1
        ):
            assert list(row) == entry["required"] and row["item"] == number
            assert row["evidence"] in entry["properties"]["evidence"]["enum"]
    first = next(e for e in examples if "Sleeps badly" in e.messages[-1]["content"])
    rows = json.loads(first.answer)["items"]
    assert rows[2]["evidence"] == "Sleeps badly nearly every night."  # item 3 cue: sleep
    assert rows[1]["evidence"] == "Reports low mood most days."


def test_heldout_split_keeps_each_person_on_one_side() -> None:
    items = [
        EvalItem(f"d{i}", f"p{i // 2}", "clinical_note", "en", "2025-01-01", "x", "PHQ-9",
                 "2025-01-01", (0,) * 9, 0)
        for i in range(200)
    ]  # fmt: skip
    train = split_items(items, "train", 0.25, 3)
    held = split_items(items, "heldout", 0.25, 3)
    assert len(train) + len(held) == 200 and 20 < len(held) < 80
    assert not {i.participant_id for i in train} & {i.participant_id for i in held}
    with pytest.raises(ConfigError, match="between 0 and 1"):
        split_items(items, "train", 1.5, 0)


def test_gad7_items_are_refused_for_a_phq9_example() -> None:
    bad = EvalItem("d", "p", "clinical_note", "en", "2025-01-01", "x", "PHQ-9", "2025-01-01",
                   (0,) * 7, 0)  # fmt: skip
    with pytest.raises(ConfigError, match="7 items, the task expects 9"):
        build_examples([bad])


# ---------------------------------------------------------------- math (fast)


def test_fedavg_weights_each_matrix_by_examples() -> None:
    a = [np.ones((2, 3), np.float32), np.zeros((4, 2), np.float32)]
    b = [np.full((2, 3), 4.0, np.float32), np.full((4, 2), 2.0, np.float32)]
    avg = fedavg([(a, 1), (b, 3)])
    np.testing.assert_allclose(avg[0], np.full((2, 3), 3.25))
    np.testing.assert_allclose(avg[1], np.full((4, 2), 1.5))
    assert all(w.dtype == np.float32 for w in avg)
    with pytest.raises(ConfigError):
        fedavg([(a, 0)])


def test_layout_orientation_and_qk_permutation() -> None:
    shape = ModelShape(n_layers=2, hidden=8, n_head=2, n_head_kv=1, head_dim=4)
    slots = adapter_layout(shape, LoraSpec(rank=3, alpha=6, targets=("q", "k", "v")))
    assert [s.gguf_name for s in slots[:2]] == ["blk.0.attn_q.weight.lora_a",
                                                 "blk.0.attn_q.weight.lora_b"]  # fmt: skip
    assert slots[0].shape == (3, 8) and slots[1].shape == (8, 3)  # A: rank x in, B: out x rank
    assert slots[3].shape == (4, 3)  # k: n_head_kv * head_dim rows
    # transformers un-permutes llama.cpp's q/k rows on load; our permutation is its inverse
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    rng = np.random.default_rng(0)
    b = rng.normal(size=(8, 3)).astype(np.float32)
    undo = LlamaTensorProcessor(config={})._reverse_permute_weights  # type: ignore[no-untyped-call]
    np.testing.assert_array_equal(undo(permute_rows(b, 2), 2, 2), b)
    a = rng.normal(size=(3, 8)).astype(np.float32)
    np.testing.assert_allclose(permute_rows(b, 2) @ a, permute_rows(b @ a, 2), rtol=1e-6)


def test_bad_settings_and_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rank 0"):
        LoraSpec(rank=0)
    with pytest.raises(ConfigError, match="targets"):
        LoraSpec.from_params({"targets": "q,x"})
    with pytest.raises(ConfigError, match="not a LoRA adapter folder"):
        read_adapter(tmp_path)
    from mindcommons.models import load_model

    with pytest.raises(ConfigError, match="not a LoRA adapter folder"):
        load_model(f"lora/{tmp_path}")


# ---------------------------------------------------------------- torch + llama.cpp (slow)


@pytest.fixture(scope="module")
def adapter(home: Path) -> Iterator[Path]:
    """One adapter: 2 sites x 1 round x 1 step (the local FedAvg loop), written to disk."""
    from mindcommons.lora.api import train_local

    out = home.parent / "adapter"
    yield train_local(load_settings(home), ["site-a", "site-b"], PARAMS, rounds=1, out=out)


@pytest.mark.slow
def test_local_fedavg_writes_an_adapter_with_its_card(adapter: Path, home: Path) -> None:
    from mindcommons.models.embedded import embedded_model_path, file_sha256

    loaded = read_adapter(adapter)
    card = loaded.card
    assert card["base_model"]["sha256"] == file_sha256(embedded_model_path())
    training = card["training"]
    assert training["mode"] == "local-fedavg" and training["sites"] == 2
    assert training["examples"] == 5 and training["steps_per_round"] == 1
    assert training["tokens"] > 0 and np.isfinite(training["loss_first"])
    assert loaded.spec == LoraSpec(rank=2, alpha=4.0, targets=("q", "v"), layers=2)
    init = LoraTrainer().initial_weights(PARAMS)
    assert len(loaded.weights) == len(init) == 2 * 2 * 2  # blocks x targets x (A, B)
    assert all(float(np.abs(w).max()) == 0 for w in init[1::2])  # B starts at zero
    assert any(float(np.abs(w).max()) > 0 for w in loaded.weights[1::2])  # and was trained
    assert "Reports low mood" not in (adapter / CARD_FILE).read_text()  # no text in the card


@pytest.mark.slow
def test_export_moves_llamacpp_logits_like_torch(adapter: Path, tmp_path: Path) -> None:
    import llama_cpp

    from mindcommons.lora.convert import load_base
    from mindcommons.lora.export import write_gguf_adapter
    from mindcommons.lora.train import LoraModel

    loaded = read_adapter(adapter)
    base = load_base()
    ids = base.tokenizer("She reports low mood and broken sleep; she feels tired.").input_ids

    def cpp(lora: Path | None) -> np.ndarray:
        llm = llama_cpp.Llama(
            model_path=str(base.path), n_ctx=64, n_threads=2, logits_all=True, verbose=False,
            lora_path=str(lora) if lora else None,
        )  # fmt: skip
        try:
            llm.eval(ids)
            return np.array(llm.scores[: len(ids)])
        finally:
            llm.close()

    cpp_base = cpp(None)
    # the trained adapter (one tiny step) changes llama.cpp's logits
    assert float(np.abs(cpp(adapter / ADAPTER_FILE) - cpp_base).mean()) > 1e-4
    # the export maps every matrix right: with B scaled up so the change dominates
    # quantization noise, llama.cpp's logits move as the PyTorch model's do
    model = LoraModel(base, loaded.spec)
    big = [w * 20 if s.part == "b" else w for s, w in zip(model.slots, loaded.weights, strict=True)]
    model.set_weights(big)
    model.set_enabled(False)
    torch_base = model.logits(ids)
    model.set_enabled(True)
    torch_lora = model.logits(ids)
    write_gguf_adapter(tmp_path / "big.gguf", base.shape, loaded.spec, big, "big")
    d_torch, d_cpp = torch_lora - torch_base, cpp(tmp_path / "big.gguf") - cpp_base
    assert float(np.abs(d_cpp).mean()) > 0.05
    assert float(np.corrcoef(d_torch.ravel(), d_cpp.ravel())[0, 1]) > 0.6
    assert float(np.abs(cpp_base - torch_base).mean()) < 0.1 * float(np.abs(torch_base).mean())


@pytest.mark.slow
def test_lora_backend_loads_adapter_like_any_model(adapter: Path) -> None:
    from typer.testing import CliRunner

    from mindcommons.cli.app import _register_commands, app
    from mindcommons.models import GenerateConfig, Message, load_model

    model = load_model(f"lora/{adapter}", n_ctx=512, n_threads=2)
    try:
        described = model.describe()
        assert described["lora_sha256"] == read_adapter(adapter).card["adapter_sha256"]
        out = model.generate([Message("user", "Say hi.")], GenerateConfig(max_tokens=4))
        assert out.usage.output_tokens >= 1
    finally:
        model.close()
    card = json.loads((adapter / CARD_FILE).read_text())
    card["base_model"]["sha256"] = "0" * 64
    other = adapter.parent / "other-base"
    other.mkdir()
    for name in ("adapter.gguf", "weights.npz"):
        (other / name).write_bytes((adapter / name).read_bytes())
    (other / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="different base model"):
        load_model(f"lora/{other}")
    _register_commands()
    shown = CliRunner().invoke(app, ["lora", "show", str(adapter)])
    assert shown.exit_code == 0 and '"kind": "lora-adapter"' in shown.output
    bad = CliRunner().invoke(app, ["lora", "train", "--home", str(other), "--rank", "0"])
    assert isinstance(bad.exception, ConfigError) and "rank 0" in str(bad.exception)


@pytest.mark.slow
def test_score_weighted_training_moves_scores_toward_the_target() -> None:
    """Trained on notes all scored 3, the adapter raises the teacher-forced score of
    held-out notes (the digit the grammar lets the model pick), and the loss weight
    lands on exactly the nine score digits."""
    from mindcommons.lora.convert import load_base
    from mindcommons.lora.train import LoraModel, TrainConfig, initial_weights

    def item(n: int, text: str, score: int) -> EvalItem:
        return EvalItem(f"d{n}", f"p{n}", "clinical_note", "en", "2025-01-10", text, "PHQ-9",
                        "2025-01-10", (score,) * 9, 9 * score)  # fmt: skip

    notes = [text for site in NOTES.values() for lang, text, _ in site if lang == "en"]
    train = build_examples([item(n, text, 3) for n, text in enumerate(notes[:3])])
    held = build_examples([item(9, notes[3], 3)])
    base = load_base()
    spec = LoraSpec(rank=2, alpha=4.0, targets=("q", "v"), layers=2)
    model = LoraModel(base, spec)
    model.set_weights(initial_weights(base.shape, spec, 0))
    enc = model.encode(held[0], 640)
    assert enc is not None and len(enc.scores) == 9
    assert [base.tokenizer.decode([enc.ids[p]]) for p in enc.scores] == ["3"] * 9
    before = model.score_predictions(held, 640)
    model.train(train, TrainConfig(steps=3, lr=0.02, max_length=640, score_weight=20.0))
    after = model.score_predictions(held, 640)
    assert before[0][1] == after[0][1] == (3,) * 9  # the targets
    assert sum(after[0][0]) > sum(before[0][0])  # predictions moved toward 3
    with pytest.raises(ConfigError, match="score_weight"):
        TrainConfig(score_weight=0.5)


@pytest.mark.slow
def test_training_text_is_what_the_task_feeds_and_gets_from_llamacpp(home: Path) -> None:
    """The example's prompt is the prompt llama.cpp evaluates for the ``phq9`` task (same
    token count), and the grammar-constrained answer is serialized like the training
    answer: the same separators and raw UTF-8 evidence (the grammar writes non-ASCII enum
    sentences as \\u escapes, which in GBNF mean the characters themselves)."""
    from dataclasses import replace

    from mindcommons.lora.convert import load_base
    from mindcommons.models import load_model

    example = next(e for e in site_examples("site-a", load_settings(home), split="all")
                   if "ánimo" in e.messages[-1]["content"])  # fmt: skip
    note = example.messages[-1]["content"].removeprefix("Text:\n")
    item = EvalItem(example.document_id, "p", "clinical_note", "es", "2025-01-10", note,
                    "PHQ-9", "2025-01-10", example.true_items, sum(example.true_items))  # fmt: skip
    tok = load_base().tokenizer
    prompt = tok.apply_chat_template(list(example.messages), tokenize=False,
                                     add_generation_prompt=True)  # fmt: skip
    spec = TASKS.get("phq9")
    config = replace(spec.generate_config(0), json_schema=spec.output_schema_for(item))
    model = load_model("embedded", n_ctx=2048, n_threads=2)
    try:
        out = model.generate(spec.build_messages(item), config)  # what run_task_direct sends
    finally:
        model.close()
    result = spec.score(item, out)
    assert out.usage.input_tokens == len(tok(prompt, add_special_tokens=False).input_ids)
    assert out.text == json.dumps(json.loads(out.text), ensure_ascii=False)  # answer_json's form
    assert result.parsed and all(result.evidence_verbatim)
    assert "\\u" not in out.text and "\\u" not in example.answer
    assert any(not quote.isascii() for quote in parse_items(out.text, 9, 0, 3).evidence)


def test_validation_summary_pools_loss_and_score_error() -> None:
    pooled = {"n": 4.0, "loss_sum": 2.0, "score_abs_sum": 9.0, "score_items": 36.0}
    assert LoraTrainer().summarize(pooled, {}) == {"heldout_loss": 0.5, "score_mae": 0.25}
    assert LoraTrainer().summarize({"n": 0.0}, {}) == {}


@pytest.mark.slow
def test_validation_releases_loss_and_teacher_forced_score_error(home: Path) -> None:
    """``evaluate`` sends sums only; its score error is exactly ``score_predictions``'s."""
    from mindcommons.lora.convert import load_base
    from mindcommons.lora.train import LoraModel

    settings = load_settings(home)
    params = {**PARAMS, "heldout_fraction": 0.99, "val_limit": 2, "score_weight": 20.0}
    trainer = LoraTrainer()
    weights = trainer.initial_weights(params)
    out = trainer.evaluate("site-a", settings, weights, params)
    assert out.weights == [] and out.n_examples == 2
    assert set(out.metrics) == {"loss_sum", "score_abs_sum", "score_items"}
    assert out.metrics["score_items"] == 18.0
    held = site_examples("site-a", settings, split="heldout", heldout_fraction=0.99, limit=2)
    model = LoraModel(load_base(), LoraSpec.from_params(params))
    model.set_weights(weights)
    pairs = model.score_predictions(held, 640)
    errors = sum(abs(p - t) for got, want in pairs for p, t in zip(got, want, strict=True))
    assert out.metrics["score_abs_sum"] == errors
    plain = model.validate(held, 640, 1.0)[0]
    assert out.metrics["loss_sum"] > 0 and plain > 0 and out.metrics["loss_sum"] != plain


@pytest.mark.slow
def test_converted_base_model_is_kept_on_disk_and_reloads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from mindcommons.lora import convert

    base = convert.load_base()  # the process's copy (or the default disk cache)
    monkeypatch.setenv(convert.CACHE_ENV, "off")
    assert convert.disk_cache_dir() is None
    monkeypatch.setenv(convert.CACHE_ENV, str(tmp_path / "cache"))
    assert convert.disk_cache_dir() == tmp_path / "cache"
    pristine = copy.deepcopy(base.model)  # earlier tests installed LoRA modules in place
    for module in list(pristine.modules()):
        for name, child in list(module.named_children()):
            if getattr(child, "is_lora", False):
                setattr(module, name, child.base)
    folder = tmp_path / "cache" / "stored"
    assert convert.store_converted(pristine, base.tokenizer, folder)
    loaded = convert.load_converted(folder)
    assert loaded is not None
    model, tokenizer = loaded
    text = "Refiere ánimo bajo; she sleeps badly. Dorme mal à noite."
    ids = base.tokenizer(text).input_ids
    assert tokenizer(text).input_ids == ids
    with torch.no_grad():
        x = torch.tensor([ids])
        assert torch.equal(model(input_ids=x).logits, pristine(input_ids=x).logits)
    (folder / "complete").unlink()  # an interrupted write is never used
    assert convert.load_converted(folder) is None
    blocked = tmp_path / "file"
    blocked.write_text("x")  # a cache that cannot be written costs a reconversion only
    assert not convert.store_converted(pristine, base.tokenizer, blocked / "stored")


def test_train_names_what_is_missing(tmp_path: Path) -> None:
    from mindcommons.lora.api import lora_params, train_local

    with pytest.raises(ConfigError, match="rank 0"):
        lora_params(rank=0)
    with pytest.raises(ConfigError, match="at least one site"):
        train_local(load_settings(tmp_path), [], lora_params())
    with pytest.raises(ConfigError, match="no folder"):
        train_local(load_settings(tmp_path), ["site-z"], lora_params())
