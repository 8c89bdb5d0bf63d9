"""MiniLM word coordinates for the learned de-identification step (``deid.wordvec``).

Every word here is written for the test or comes from our own word lists (no gold text)."""

from __future__ import annotations

import json
import numbers
import re

import numpy as np
import pytest

from mindcommons.deid import detect
from mindcommons.deid.learned import (
    MODEL_FILE,
    _classes,
    _features,
    labelled,
    lexicon_words,
    load_model,
    train,
)
from mindcommons.deid.resources import _DATA
from mindcommons.deid.wordvec import WordVectors, _folder, fit_projection, wordpieces
from mindcommons.errors import ConfigError


def test_wordpieces_match_minilm_tokenizer() -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(_folder() / "tokenizer.json"))
    tok.no_padding()
    for word in ("Quixwell", "hypertension", "O", "Zagorski", "José", "x7", "Ibuprofen"):
        assert list(wordpieces(word)) == tok.encode(word, add_special_tokens=False).ids, word


def test_projection_is_deterministic_numbers_and_refuses_too_few_words() -> None:
    words = lexicon_words("en")[::40]
    a, b = fit_projection(words, 8), fit_projection(words, 8)
    assert a == b and a.dims == 8 and len(a.mean) == 384
    x = WordVectors(a)
    v = np.stack([x.vector(w) for w in words if w.isalpha() and len(w) > 1])
    assert np.allclose(v.mean(axis=0), 0.0, atol=0.05)  # centred on the words it was fitted on
    assert np.allclose(v.std(axis=0), 1.0, atol=0.05)  # unit variance per direction
    with pytest.raises(ConfigError, match="more than 8 words"):
        fit_projection(["alpha", "beta"], 8)


def test_shipped_model_file_holds_only_numbers_beside_listed_feature_names() -> None:
    """The MiniLM part of the model file is numbers only; every other key is a feature name
    that names no word outside our own lists (checked in test_deid_learned too)."""
    raw = json.loads((_DATA / "en" / MODEL_FILE).read_text(encoding="utf-8"))
    emb = raw["embedding"]
    assert set(emb) == {"groups", "projection", "add", "keep", "kind"}

    def leaves(obj: object) -> list[object]:
        if isinstance(obj, dict):
            return [x for v in obj.values() for x in leaves(v)]
        if isinstance(obj, list):
            return [x for v in obj for x in leaves(v)]
        return [obj]

    numbers_only = {k: v for k, v in emb.items() if k != "groups"}
    values = leaves(numbers_only)
    assert values and all(isinstance(v, numbers.Real) for v in values)
    assert set(emb["kind"]) <= {"NAME", "LOCATION", "DATE", "PHONE", "ID"}
    model = load_model("en")
    assert model is not None and model.projection is not None
    size = len(model.groups) * model.projection.dims
    assert len(model.add_dense) == size and model.keep_dense == ()  # vetoes use none
    listed = _classes("en").context
    for weights in (raw["add"], raw["keep"], *raw["kind"].values()):
        for feature in weights:
            assert all(m.group(1) in listed for m in re.finditer(r"w=([^|]+)", feature))


NOTE = (
    "Pt seen in the unit this morning, calm and eating. Spoke with {w} by phone about "
    "the plan; pt agrees with discharge to home on Friday."
)


def test_unseen_name_like_word_scores_higher_than_unseen_ordinary_word() -> None:
    """Two words in none of our lists: a name-like one ("Kathlyne") gets a larger MiniLM
    push toward identifier than a misspelt clinical one ("hypertensoin"), and is found."""
    model = load_model("en")
    assert model is not None
    pushes = {}
    for word in ("Kathlyne", "hypertensoin"):
        assert word.lower() not in set(lexicon_words("en"))
        text = NOTE.format(w=word)
        ws, feats, mode = _features(text, "en", [])
        z = model.dense_z(model.dense(ws, feats, mode), "add")
        assert z is not None
        pushes[word] = float(z[[w.text for w in ws].index(word)])
    assert pushes["Kathlyne"] > pushes["hypertensoin"] + 1.0
    text = NOTE.format(w="Kathlyne")
    found = {text[s.start : s.end] for s in detect(text, "en")}
    assert "Kathlyne" in found
    bad = NOTE.format(w="hypertensoin")
    assert "hypertensoin" not in {bad[s.start : s.end] for s in detect(bad, "en")}


def test_training_with_minilm_features_is_deterministic() -> None:
    from mindcommons.synth.phi import with_phi
    from mindcommons.synth.site import generate_site

    site, spans = with_phi(generate_site(0, patients=3, seed=5), seed=5)
    projection = fit_projection(lexicon_words("en")[::20], 6)
    vectors = WordVectors(projection)
    feats: list[list[str]] = []
    labels: list[str] = []
    rows = []
    for doc in site.documents:
        gold = [(s.start, s.end, "NAME") for s in spans if s.document_id == doc.document_id]
        if not gold:
            continue
        f, y, x = labelled(doc.text, "en", gold, [], (vectors, ["self", "next"]))
        assert x is not None and x.shape == (len(y), 12)
        feats, labels, rows = feats + f, labels + y, [*rows, x]
    dense = np.vstack(rows)
    kw = {"thresholds": {"add": 0.5}, "dense": dense, "projection": projection}
    a = train(feats, labels, groups=("self", "next"), **kw)  # type: ignore[arg-type]
    b = train(feats, labels, groups=("self", "next"), **kw)  # type: ignore[arg-type]
    assert json.dumps(a.to_json()) == json.dumps(b.to_json())
    assert len(a.add_dense) == 12 and a.groups == ("self", "next")
    with pytest.raises(ConfigError, match="dense rows"):
        train(feats, labels, thresholds={}, dense=dense[:-1], projection=projection)
