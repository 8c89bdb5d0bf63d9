"""Fine-tuning the MiniLM encoder: batching, configuration, and a tiny real fine-tune."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


# ---------------------------------------------------------------- rationale supervision

RAT_HEADER = "sp_id,rp_id,seeker_post,response_post,level,rationales\n"


def test_epitome_rationales_become_spans_of_the_response(tmp_path: Path) -> None:
    from mindcommons.datasets import epitome

    response = "I am so sorry.  That must hurt &lt;3 What happened next?"
    rows = {  # ER: found despite a double space and an HTML entity; IP: level 0
        "ER": f'a,r1,I feel alone,"{response}",2,I am so sorry. That must hurt <3|\n'
        "b,r2,No sleep,Try tea,1,\n"  # level 1 without a rationale: unknown
        "c,r3,Lost my job,Go for a run,1,Go for a swim|\n",  # not in the response: unknown
        "IP": f'a,r1,I feel alone,"{response}",0,\nb,r2,No sleep,Try tea,0,\n'
        "c,r3,Lost my job,Go for a run,0,\n",
        "EX": f'a,r1,I feel alone,"{response}",2,What happened next?|\n'
        "b,r2,No sleep,Try tea,0,\nc,r3,Lost my job,Go for a run,0,\n",
    }
    for mech, text in rows.items():
        (tmp_path / epitome.FILES[mech]).write_text(RAT_HEADER + text)
    pairs = epitome.load_epitome(tmp_path)
    a = pairs[0]
    assert [a.response[s:e] for s, e in a.rationales["ER"]] == [
        "I am so sorry.  That must hurt &lt;3"
    ]
    assert a.rationales["IP"] == ()  # level 0: every response token is outside
    assert [a.response[s:e] for s, e in a.rationales["EX"]] == ["What happened next?"]
    assert "ER" not in pairs[1].rationales and pairs[1].rationales["IP"] == ()
    assert "ER" not in pairs[2].rationales
    examples = MEASURES.get("empathy").load_public(tmp_path)  # type: ignore[misc]
    assert examples[0].rationales == dict(a.rationales)


def test_jsonl_rationales_are_located_and_bad_ones_named(tmp_path: Path) -> None:
    from mindcommons.errors import InputError
    from mindcommons.measure.kinds import read_jsonl

    kind = MEASURES.get("empathy")
    line = {"post": "I can't sleep", "response": "That sounds exhausting. What keeps you up?",
            "labels": {"ER": 1, "IP": 0, "EX": 2},
            "rationales": {"ER": ["sounds exhausting"], "EX": ["What keeps you up?"],
                           "IP": []}}  # fmt: skip
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(line) + "\n")
    (ex,) = read_jsonl(kind, path)
    assert ex.rationales == {"ER": ((5, 22),), "EX": ((24, 42),), "IP": ()}
    line["rationales"] = {"ER": ["sounds exhausting"], "EX": ["Why now?"]}
    path.write_text(json.dumps({"post": "x", "response": "y", "labels": {"ER": 0}}) + "\n"
                    + json.dumps(line) + "\n")  # fmt: skip
    with pytest.raises(InputError) as err:
        read_jsonl(kind, path)
    assert err.value.field == "rationales.EX" and err.value.record == 2
    assert str(err.value.file) == str(path)


def test_token_labels_mark_tokens_overlapping_a_span() -> None:
    offsets = [(0, 4), (5, 7), (7, 8), (9, 14), (15, 20)]
    assert finetune.token_labels(offsets, [(5, 8)]) == [0, 1, 1, 0, 0]
    assert finetune.token_labels(offsets, [(3, 6), (16, 17)]) == [1, 1, 0, 0, 1]
    assert finetune.token_labels(offsets, []) == [0, 0, 0, 0, 0]


def test_rationale_weight_is_checked_and_needs_spans() -> None:
    with pytest.raises(ConfigError, match="rationale-weight -1"):
        finetune.FinetuneConfig(rationale_weight=-1.0).check()
    with pytest.raises(ConfigError, match="rationale-weight nan"):
        finetune.FinetuneConfig(rationale_weight=float("nan")).check()
    kind = MEASURES.get("empathy")
    plain = [Example(("post", "reply"), {"ER": "0"})]
    with pytest.raises(ConfigError, match="no training example has rationale spans"):
        finetune.finetune(kind, plain, [], finetune.FinetuneConfig(rationale_weight=0.5))


def run_train_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``mindcommons train empathy --data HOME/absent ARGS`` in a subprocess."""
    env = {**os.environ, "MINDCOMMONS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "mindcommons", "train", "empathy",
                           "--data", str(home / "absent"), *args],
                          capture_output=True, text=True, env=env, timeout=120,
                          check=False)  # fmt: skip


def test_cli_rationale_weight_needs_finetune_and_a_valid_weight(tmp_path: Path) -> None:
    out = run_train_cli(tmp_path, "--rationale-weight", "0.5")
    assert out.returncode != 0 and "add --finetune" in out.stderr + out.stdout
    out = run_train_cli(tmp_path, "--finetune", "--rationale-weight", "-0.5")
    assert out.returncode != 0 and "rationale-weight -0.5" in out.stderr + out.stdout


def _rationale_pairs() -> list[Example]:
    """_pairs() with rationale spans: the warm words (ER) and the question (EX)."""
    out = []
    for e in _pairs():
        response = e.texts[1]
        spans: dict[str, tuple[tuple[int, int], ...]] = {"IP": ()}
        for key, phrase in (("ER", "so sorry"), ("EX", "What happened after that")):
            at = response.find(phrase)
            spans[key] = ((at, at + len(phrase)),) if at >= 0 else ()
        out.append(Example(e.texts, e.labels, e.group, spans))
    return out


@pytest.mark.slow
def test_rationale_tokens_are_labelled_on_the_response_only() -> None:
    tokenizer, _ = finetune.load_base()
    post = "I lost my job and I keep thinking about it every night " * 3
    response = "I am so sorry. What happened after that, and who knows?"
    spans = {"ER": ((5, 13),), "EX": ((15, 39),), "IP": ()}
    keys = ["ER", "IP", "EX"]
    resp_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    for cut, width in (("post_first", 40), ("longest_first", 40), ("post_first", 128)):
        tokens = finetune._Tokens(tokenizer, [(post, response)], width, cut, [spans], keys)
        assert tokens.rationale is not None
        labels, ids, types = tokens.rationale[0], tokens.ids[0], tokens.types[0]
        supervised = [i for i in range(len(ids)) if labels[i, 0] >= 0]
        kept = sum(types) - 1  # the response's tokens, without the closing [SEP]
        assert supervised == list(range(len(ids) - 1 - kept, len(ids) - 1))
        assert [ids[i] for i in supervised] == resp_ids[:kept]  # the response, in place
        words = tokenizer.convert_ids_to_tokens(ids)
        assert [words[i] for i in supervised if labels[i, 0] == 1] == ["so", "sorry"]
        assert " ".join(words[i] for i in supervised if labels[i, 2] == 1).startswith(
            "what happened after that"
        )
        assert all(labels[i, 1] == 0 for i in supervised)  # IP: known, nothing inside
    # a single-text input: the text's tokens between [CLS] and [SEP]
    single = finetune._Tokens(tokenizer, [("I am so sorry",)], 16, rationales=[{"ER": ((5, 13),)}],
                              keys=["ER"])  # fmt: skip
    assert single.rationale is not None
    assert single.rationale[0][:, 0].tolist() == [-1, 0, 0, 1, 1, -1]
    # no spans for a key: that key is not supervised at all
    none = finetune._Tokens(tokenizer, [("post", "reply")], 16, rationales=[{}], keys=["ER"])
    assert none.rationale is not None and (none.rationale[0] == -1).all()
    batch = tokens.rationale_batch([0])
    assert batch.shape == (1, len(tokens.ids[0]), 3)


@pytest.mark.slow
def test_rationale_loss_reaches_the_encoder_and_is_trained() -> None:
    import torch

    tokenizer, model = finetune.load_base()
    data = _rationale_pairs()
    keys = ["ER", "IP", "EX"]
    tokens = finetune._Tokens(tokenizer, [e.texts for e in data[:4]], 32, "post_first",
                              [e.rationales for e in data[:4]], keys)  # fmt: skip
    net = finetune.build_net(model, 9, 0.0, start=0, token_outputs=3)
    hidden, _ = finetune._states_batch(net, tokens, None, [0, 1, 2, 3])
    loss = finetune.rationale_loss(
        torch, net.token_head(hidden), tokens.rationale_batch([0, 1, 2, 3])
    )
    loss.backward()
    assert float(loss.detach()) > 0
    assert net.token_head.weight.grad.abs().sum() > 0  # the token head
    layer = model.encoder.layer[0].attention.self.query.weight
    assert layer.grad is not None and layer.grad.abs().sum() > 0  # and the encoder below it
    assert net.head.weight.grad is None  # the level head is not in this loss
    assert not hasattr(finetune.build_net(model, 9, 0.0), "token_head")  # off: no token head

    # a short fine-tune with rationale supervision: the auxiliary loss is trained and
    # recorded, on the cached-lower-layers path too, and falls
    kind = MEASURES.get("empathy")
    options = finetune.FinetuneConfig(
        epochs=4, batch_size=8, max_length=24, layers=1, lr=3e-4, head_lr=2e-2, warmup=0.0,
        evals_per_epoch=1, patience=10, seed=3, head_init="random", rationale_weight=0.5,
        pair_truncation="post_first",
    )  # fmt: skip
    result = finetune.finetune(kind, data[:24], data[24:30], options)
    history = result.history
    assert [h["epoch"] for h in history] == [1.0, 2.0, 3.0, 4.0]
    assert history[-1]["rationale_loss"] < history[0]["rationale_loss"]
    net = result.net
    tok = finetune._Tokens(result.tokenizer, [data[0].texts], 24, "post_first",
                           [data[0].rationales], keys)  # fmt: skip
    hidden, _ = finetune._states_batch(net, tok, finetune.LowerCache(net, tok), [0])
    with torch.no_grad():
        z = net.token_head(hidden)[0, :, 0].numpy()  # ER logits of the WARM response
    assert tok.rationale is not None
    inside, outside = tok.rationale[0][:, 0] == 1, tok.rationale[0][:, 0] == 0
    assert z[inside].mean() > z[outside].mean()  # the span's tokens score higher
