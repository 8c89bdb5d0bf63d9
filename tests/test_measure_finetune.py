"""Fine-tuning the MiniLM encoder: batching, configuration, and a tiny real fine-tune."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mindcommons.errors import ConfigError
from mindcommons.measure import MEASURES, finetune, load_measurer
from mindcommons.measure.kinds import Example


def test_length_batches_cover_every_item_once_and_are_seeded() -> None:
    lengths = np.array([5, 40, 7, 33, 12, 9, 50, 3, 21, 17, 8], dtype=np.int64)
    a = finetune.length_batches(lengths, 3, np.random.default_rng(1))
    b = finetune.length_batches(lengths, 3, np.random.default_rng(1))
    assert a == b
    assert sorted(i for batch in a for i in batch) == list(range(len(lengths)))
    assert all(1 <= len(batch) <= 3 for batch in a)
    ordered = finetune.length_batches(lengths, 4, None)  # inference: longest first
    flat = [i for batch in ordered for i in batch]
    assert list(lengths[flat]) == sorted(lengths, reverse=True)


def test_config_errors_name_the_option() -> None:
    with pytest.raises(ConfigError, match="finetune-layers"):
        finetune.FinetuneConfig(layers=-1).check()
    with pytest.raises(ConfigError, match="class weighting"):
        finetune.FinetuneConfig(class_weighting="inverse").check()
    with pytest.raises(ConfigError, match="pair truncation 'response_first'"):
        finetune.FinetuneConfig(pair_truncation="response_first").check()
    finetune.FinetuneConfig().check()


def test_post_first_budget_cuts_the_post_first_but_keeps_a_quarter() -> None:
    assert finetune.post_first_budget(10, 20, 40) == (10, 20)  # fits: nothing cut
    assert finetune.post_first_budget(30, 20, 40) == (20, 20)  # the response stays whole
    assert finetune.post_first_budget(30, 60, 40) == (10, 30)  # post down to a quarter
    assert finetune.post_first_budget(4, 60, 40) == (4, 36)  # a short post stays whole
    assert finetune.post_first_budget(0, 60, 40) == (0, 40)
    for n_post in range(0, 50, 7):
        for n_resp in range(0, 50, 9):
            a, b = finetune.post_first_budget(n_post, n_resp, 24)
            assert 0 <= a <= n_post and 0 <= b <= n_resp and a + b <= 24


@pytest.mark.slow
def test_post_first_tokens_match_the_tokenizer_and_keep_the_response() -> None:
    tokenizer, _ = finetune.load_base()
    short = [("I feel alone tonight", "I am sorry, do you want to talk about it?")]
    plain = finetune._Tokens(tokenizer, short, 64)
    post_first = finetune._Tokens(tokenizer, short, 64, "post_first")
    assert post_first.ids == plain.ids and post_first.types == plain.types  # nothing cut
    post = "my week " * 40
    response = "What happened, and who did you tell about it? " * 3
    cut = finetune._Tokens(tokenizer, [(post, response)], 48, "post_first")
    longest = finetune._Tokens(tokenizer, [(post, response)], 48)
    assert int(cut.lengths[0]) == 48 == int(longest.lengths[0])
    resp_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    n_resp = sum(cut.types[0]) - 1  # the response's segment, without its closing [SEP]
    assert cut.ids[0][-1 - n_resp : -1] == resp_ids[:n_resp]
    assert n_resp > sum(longest.types[0]) - 1  # post_first keeps more of the response


# Project-written (seeker post, response) pairs: the response's wording decides the
# labels (ER: feeling words, EX: a question), so a few steps can learn them.
POSTS = [
    "I failed my exam again and I feel worthless",
    "My partner left and the flat is so quiet now",
    "Work keeps piling up and I can't sleep at night",
    "I moved to a new city and I don't know anyone",
]
WARM = "I am so sorry, that sounds really painful and lonely"
ASK = "What happened after that, and who have you talked to?"
FLAT = "Go to bed earlier and drink less coffee"


def _pairs() -> list[Example]:
    out = []
    for i, post in enumerate(POSTS * 3):
        for response, er, ex in ((WARM, "2", "0"), (ASK, "0", "2"), (FLAT, "0", "0")):
            text = f"{post} ({i})"
            out.append(Example((text, response), {"ER": er, "IP": "0", "EX": ex}, f"{i}-{er}{ex}"))
    return out


@pytest.mark.slow
def test_tiny_finetune_learns_round_trips_and_predicts_deterministically(tmp_path: Path) -> None:
    from mindcommons.settings import load_settings

    kind = MEASURES.get("empathy")
    data = _pairs()
    train, val, test = data[:24], data[24:30], data[30:]
    options = finetune.FinetuneConfig(
        epochs=4, batch_size=8, max_length=24, layers=1, lr=3e-4, head_lr=2e-2,
        warmup=0.0, evals_per_epoch=1, patience=10, seed=3, head_init="random",
        pair_truncation="post_first",
    )  # fmt: skip
    settings = load_settings(tmp_path / "home")
    report = finetune.train_finetuned(kind, train, val, test, options, settings=settings,
                                      n_boot=50)  # fmt: skip
    card = json.loads((report.path / "card.json").read_text())  # type: ignore[operator]
    training = card["training"]
    history = training["validation_history"]
    assert [h["epoch"] for h in history] == [1.0, 2.0, 3.0, 4.0]
    assert history[-1]["train_loss"] < history[0]["train_loss"]  # the loss decreases
    assert card["encoder"]["finetuned"]["layers"] == 1
    assert card["encoder"]["finetuned"]["pair_truncation"] == "post_first"
    assert "seeker post is cut first" in card["encoder"]["input"]
    assert len(card["encoder"]["finetuned"]["base_sha256"]) == 64
    assert training["seconds"] > 0 and training["peak_rss_mb"] > 0
    assert "macro_f1" in card["metrics"]["intervals"]
    assert {p.name for p in report.path.iterdir()} == {  # type: ignore[union-attr]
        "weights.npz", "card.json", "card.md", finetune.ENCODER_FILE,
    }  # fmt: skip
    assert "fine-tuned: its top 1 of 6 layers" in (report.path / "card.md").read_text()  # type: ignore[operator]

    m = load_measurer("empathy", settings)
    items = [e.texts for e in test]
    first = m.predict(items)
    again = load_measurer("empathy", settings).predict(items)
    assert [p.probs for p in first] == [p.probs for p in again]  # deterministic
    # what was scored at training time is what the loaded artifact predicts
    from mindcommons.measure.scores import score_outputs
    from mindcommons.measure.train import encode_labels

    pred = np.array([[o.labels.index(p.labels[o.key]) for o in kind.outputs] for p in first])
    assert score_outputs(kind.outputs, encode_labels(kind, test), pred) == report.metrics
    learned = m.predict([("I lost my job today", WARM), ("I lost my job today", ASK)])
    assert learned[0].labels["ER"] == "2" and learned[1].labels["EX"] == "2"
    # linear probing first: the head fitted on the frozen encoder is evaluated at step 0
    probed = finetune.finetune(kind, train, val, finetune.FinetuneConfig(
        max_steps=1, batch_size=8, max_length=32, layers=1, evals_per_epoch=1, seed=3))  # fmt: skip
    assert probed.history[0]["step"] == 0 and probed.history[0]["validation"] > 0.5
    assert probed.steps == 1 and probed.stopped == "step limit"
    # the cached lower layers give exactly the full encoder's output
    tokenizer, model = finetune.load_base()
    net = finetune.build_net(model, 9, 0.1, start=4).eval()
    tokens = finetune._Tokens(tokenizer, items[:3], 32)
    full = finetune.pooled_features(net, tokens)
    split = finetune.pooled_features(net, tokens, finetune.LowerCache(net, tokens))
    assert np.array_equal(full, split)
