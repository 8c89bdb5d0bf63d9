"""One model per output (``--outputs``) and combined models (``--combine``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mindcommons.errors import ConfigError, InputError, PrerequisiteError
from mindcommons.measure import MEASURES, load_measurer
from mindcommons.measure.model import CombinedMeasurer, artifact_name, combine_artifacts
from mindcommons.settings import Settings, load_settings

POSTS = ["My exams went badly and I cannot sleep", "I moved away and feel alone every day",
         "My mother is ill and I am scared", "I failed my driving test again today"]  # fmt: skip
# project-written responses: ER shows in warm words, IP in shared experience, EX in questions
RESPONSES = (
    ("I am so sorry, that sounds really painful", {"ER": "2", "IP": "0", "EX": "0"}),
    ("I went through the same thing last year and I know that feeling",
     {"ER": "0", "IP": "2", "EX": "0"}),
    ("What happened after that, and who have you talked to?", {"ER": "0", "IP": "0", "EX": "2"}),
)  # fmt: skip


def _jsonl(path: Path) -> Path:
    rows = [
        {"post": f"{post} ({i})", "response": response, "labels": labels, "group": f"{i}-{k}"}
        for i, post in enumerate(POSTS * 4)
        for k, (response, labels) in enumerate(RESPONSES)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_only_restricts_the_outputs_and_names_unknown_ones() -> None:
    kind = MEASURES.get("empathy")
    ip = kind.only(["IP"])
    assert [o.key for o in ip.outputs] == ["IP"] and ip.name == "empathy"
    assert [o.key for o in kind.only(["EX", "ER"]).outputs] == ["ER", "EX"]  # the kind's order
    assert artifact_name(kind) == "empathy" and artifact_name(ip) == "empathy.IP"
    with pytest.raises(ConfigError, match="outputs XX: empathy has outputs ER, IP, EX"):
        kind.only(["IP", "XX"])
    with pytest.raises(ConfigError, match="outputs"):
        kind.only([])


def test_outputs_without_labels_name_the_file_and_nothing_is_saved(tmp_path: Path) -> None:
    from mindcommons.measure.train import train_kind

    rows = [{"post": f"{p} ({i})", "response": r, "labels": {"ER": labels["ER"]}}
            for i, p in enumerate(POSTS) for r, labels in RESPONSES]  # fmt: skip
    data = tmp_path / "er_only.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    settings = load_settings(tmp_path / "home")
    with pytest.raises(InputError, match="no example has a label for IP") as err:
        train_kind("empathy", data, settings=settings, outputs=("IP",))
    assert err.value.file == str(data) and err.value.field == "labels"
    with pytest.raises(ConfigError, match="outputs XX"):
        train_kind("empathy", data, settings=settings, outputs=("XX",))
    assert not (tmp_path / "home" / "models").exists()


def _train(settings: Settings, data: Path, outputs: tuple[str, ...] = ()) -> Path:
    from mindcommons.measure.train import train_kind

    report = train_kind("empathy", data, settings=settings, epochs=40, outputs=outputs)
    assert report.path is not None
    return report.path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with an IP-only model (``empathy.IP/v1``) and a whole one (``empathy/v1``);
    tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("combine")
    data = _jsonl(root / "pairs.jsonl")
    settings = load_settings(root / "home")
    ip_path = _train(settings, data, ("IP",))
    assert ip_path == root / "home" / "models" / "empathy.IP" / "v1"
    assert _train(settings, data) == root / "home" / "models" / "empathy" / "v1"
    return root / "home"


def _copy(trained: Path, to: Path) -> Settings:
    shutil.copytree(trained, to)
    return load_settings(to)


@pytest.mark.slow
def test_per_output_models_combine_into_one(trained: Path, tmp_path: Path) -> None:
    ip_path = trained / "models" / "empathy.IP" / "v1"
    card = json.loads((ip_path / "card.json").read_text())
    assert card["name"] == "empathy.IP" and card["kind"] == "empathy"
    assert [o["key"] for o in card["head"]["outputs"]] == ["IP"]
    assert set(card["metrics"]["test"]) >= {"IP.accuracy", "macro_f1"}
    assert not any(k.startswith(("ER.", "EX.")) for k in card["metrics"]["test"])
    alone = tmp_path / "alone"
    shutil.copytree(ip_path, alone / "models" / "empathy.IP" / "v1")
    with pytest.raises(PrerequisiteError):  # a partial model never stands in for the kind
        load_measurer("empathy", load_settings(alone))

    settings = _copy(trained, tmp_path / "home")
    whole = load_measurer("empathy", settings)
    assert whole.version == "v1" and not isinstance(whole, CombinedMeasurer)
    parts = {"ER": "empathy@v1", "IP": "empathy.IP@v1", "EX": "empathy@v1"}
    combined_path = combine_artifacts("empathy", parts, settings=settings)
    assert combined_path.name == "v2" and {p.name for p in combined_path.iterdir()} == {
        "card.json", "card.md"}  # fmt: skip
    combined = load_measurer("empathy", settings)  # the newest version: the combined one
    assert isinstance(combined, CombinedMeasurer) and combined.version == "v2"
    items = [(f"{p} (new)", r) for p in POSTS for r, _ in RESPONSES]
    got = combined.predict(items)
    from_whole = whole.predict(items)
    from_ip = load_measurer("empathy.IP", settings).predict(items)
    for c, w, i in zip(got, from_whole, from_ip, strict=True):
        assert list(c.labels) == ["ER", "IP", "EX"]
        assert c.probs["ER"] == w.probs["ER"] and c.probs["EX"] == w.probs["EX"]
        assert c.probs["IP"] == i.probs["IP"] and c.labels["IP"] == i.labels["IP"]
    assert [p.labels["IP"] for p in got[1::3]] == ["2"] * len(POSTS)  # learned, per output
    assert "empathy.IP/v1" in (combined_path / "card.md").read_text()
    with pytest.raises(ConfigError, match="predicts from texts"):
        combined.predict_features(np.zeros((1, 4), np.float32))

    # the home can move: parts are found relative to the combined folder
    moved = tmp_path / "moved"
    (tmp_path / "home").rename(moved)
    again = load_measurer(moved / "models" / "empathy" / "v2")
    assert [p.probs for p in again.predict(items)] == [p.probs for p in got]

    # a part replaced after combining is refused, naming the card and the output
    part_card = moved / "models" / "empathy.IP" / "v1" / "card.json"
    part_card.write_text(part_card.read_text().replace('"empathy.IP"', '"empathy.IP" '))
    with pytest.raises(InputError, match="replaced since it was combined") as err:
        load_measurer(moved / "models" / "empathy" / "v2")
    assert err.value.field == "combined.IP" and str(err.value.file).endswith("v2/card.json")


@pytest.mark.slow
def test_combine_refuses_incomplete_foreign_and_nested_parts(trained: Path, tmp_path: Path) -> None:
    settings = _copy(trained, tmp_path / "home")
    with pytest.raises(ConfigError, match="missing: ER, EX"):
        combine_artifacts("empathy", {"IP": "empathy.IP@v1"}, settings=settings)
    with pytest.raises(ConfigError, match="unknown: XX"):
        combine_artifacts("empathy", {"ER": "a", "IP": "b", "EX": "c", "XX": "d"},
                          settings=settings)  # fmt: skip
    # a part that lacks the output it is asked for
    with pytest.raises(ConfigError, match="cannot give empathy ER"):
        combine_artifacts("empathy", {k: "empathy.IP@v1" for k in ("ER", "IP", "EX")},
                          settings=settings)  # fmt: skip
    with pytest.raises(PrerequisiteError):
        combine_artifacts("empathy", {k: "empathy@v9" for k in ("ER", "IP", "EX")},
                          settings=settings)  # fmt: skip
    combine_artifacts("empathy", {"ER": "empathy@v1", "IP": "empathy.IP@v1", "EX": "empathy@v1"},
                      settings=settings)  # fmt: skip
    with pytest.raises(ConfigError, match="itself combined"):
        combine_artifacts("empathy", {"ER": "empathy@v2", "IP": "empathy.IP@v1",
                                      "EX": "empathy@v1"}, settings=settings)  # fmt: skip
    kept = sorted(p.name for p in (tmp_path / "home" / "models" / "empathy").iterdir())
    assert kept == ["v1", "v2"]  # nothing half-written by the refusals


@pytest.mark.slow
def test_cli_outputs_and_combine(trained: Path, tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "pairs.jsonl")
    home = tmp_path / "home"
    shutil.copytree(trained / "models" / "empathy", home / "models" / "empathy")
    env = {**os.environ, "MINDCOMMONS_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    runs = [["--data", str(data), "--outputs", "IP", "--epochs", "30"],
            ["--combine", "ER=empathy@v1,IP=empathy.IP@v1,EX=empathy@v1"]]  # fmt: skip
    runs.append(["--combine", "ER=empathy@v1,IP=empathy.IP@v1,IP=empathy@v1,EX=empathy@v1"])
    for run in runs:
        out = subprocess.run(
            [sys.executable, "-m", "mindcommons", "train", "empathy", *run, "--json"],
            capture_output=True, text=True, env=env, timeout=600, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        shown = json.loads(out.stdout.strip().splitlines()[-1])
    assert shown["artifact"] == str(home / "models" / "empathy" / "v3")
    assert shown["combined"]["IP"] == ["empathy.IP@v1", "empathy@v1"]  # repeated: an ensemble
    ensemble = load_measurer("empathy", load_settings(home))
    assert isinstance(ensemble, CombinedMeasurer) and len(ensemble.parts["IP"]) == 2
    assert (home / "models" / "empathy.IP" / "v1" / "weights.npz").exists()  # from --outputs

    import typer

    from mindcommons.cli.app import _register_commands, app

    _register_commands()
    command = typer.main.get_command(app)
    cases: list[tuple[tuple[str, ...], str]] = [
        (("--combine", "ER=empathy@v1,IP"), "expected OUTPUT=MODEL pairs"),
        (
            ("--combine", "ER=empathy@v1,ER=empathy@v1,IP=empathy.IP@v1,EX=empathy@v1"),
            "named twice",
        ),
        (("--combine", "ER=a", "--data", str(data)), "trains nothing"),
        (("--data", str(data), "--outputs", "XX"), "outputs XX: empathy has outputs"),
        (("--outputs", "IP", "--federated"), "--outputs trains locally"),
    ]
    for args, says in cases:
        bad = CliRunner().invoke(command, ["train", "empathy", "--home", str(home), *args])
        assert isinstance(bad.exception, ConfigError) and says in str(bad.exception), args
    assert sorted(p.name for p in (home / "models" / "empathy").iterdir()) == ["v1", "v2", "v3"]


@pytest.mark.slow
def test_finetuning_one_output_trains_and_saves_only_it(tmp_path: Path) -> None:
    from mindcommons.measure import finetune
    from mindcommons.measure.kinds import Example, read_jsonl

    kind = MEASURES.get("empathy")
    phrase = "went through the same thing"
    examples = []
    for e in read_jsonl(kind, _jsonl(tmp_path / "pairs.jsonl")):
        at = e.texts[1].find(phrase)
        spans: dict[str, tuple[tuple[int, int], ...]] = {
            "IP": ((at, at + len(phrase)),) if at >= 0 else (), "ER": ((0, 4),)}  # fmt: skip
        examples.append(Example(e.texts, e.labels, e.group, spans))
    options = finetune.FinetuneConfig(
        max_steps=2, batch_size=8, max_length=32, layers=1, evals_per_epoch=1,
        rationale_weight=0.5, head_init="random", seed=1,
    )  # fmt: skip
    settings = load_settings(tmp_path / "home")
    report = finetune.train_finetuned(kind.only(["IP"]), examples[:36], examples[36:], [],
                                      options, settings=settings)  # fmt: skip
    assert report.path == tmp_path / "home" / "models" / "empathy.IP" / "v1"
    card = json.loads((report.path / "card.json").read_text())
    assert [o["key"] for o in card["head"]["outputs"]] == ["IP"]
    assert card["training"]["steps"] == 2 and list(card["training"]["class_weights"]) == ["IP"]
    [pred] = load_measurer(report.path).predict([(POSTS[0], RESPONSES[1][0])])
    assert list(pred.labels) == ["IP"] and set(pred.probs["IP"]) == {"0", "1", "2"}


@pytest.mark.slow
def test_an_output_from_several_models_averages_their_probabilities(
    trained: Path, tmp_path: Path
) -> None:
    settings = _copy(trained, tmp_path / "home")
    parts = {"ER": "empathy@v1", "IP": ["empathy.IP@v1", "empathy@v1"], "EX": "empathy@v1"}
    path = combine_artifacts("empathy", parts, settings=settings)
    card = json.loads((path / "card.json").read_text())
    assert [m["artifact"] for m in card["combined"]["IP"]] == [
        "../../empathy.IP/v1", "../v1"]  # fmt: skip
    assert "ensemble" in (path / "card.md").read_text()
    combined = load_measurer(path)
    assert isinstance(combined, CombinedMeasurer)
    whole, ip = load_measurer("empathy@v1", settings), load_measurer("empathy.IP@v1", settings)
    assert combined.parts["ER"] == [combined.parts["IP"][1]]  # empathy/v1 is loaded once
    items = [(f"{p} (again)", r) for p in POSTS for r, _ in RESPONSES]
    for c, w, i in zip(combined.predict(items), whole.predict(items), ip.predict(items),
                       strict=True):  # fmt: skip
        mean = {lab: (i.probs["IP"][lab] + w.probs["IP"][lab]) / 2 for lab in ("0", "1", "2")}
        assert c.probs["IP"] == pytest.approx(mean)
        assert c.labels["IP"] == max(mean, key=lambda lab: mean[lab])
        assert c.probs["ER"] == w.probs["ER"] and c.labels["EX"] == w.labels["EX"]
    with pytest.raises(ConfigError, match="named twice for IP"):
        combine_artifacts("empathy", {**parts, "IP": ["empathy.IP@v1", "empathy.IP@v1"]},
                          settings=settings)  # fmt: skip
    with pytest.raises(ConfigError, match="cannot give empathy ER"):
        combine_artifacts("empathy", {**parts, "ER": ["empathy@v1", "empathy.IP@v1"]},
                          settings=settings)  # fmt: skip
    with pytest.raises(ConfigError, match="needs an artifact for EX"):
        combine_artifacts("empathy", {**parts, "EX": []}, settings=settings)
    # a card whose ensemble entry is not a list of {artifact, card_sha256}: named, not loaded
    broken = path.parent / "broken"  # beside it, so the relative paths still resolve
    shutil.copytree(path, broken)
    bad_card = json.loads((broken / "card.json").read_text())
    bad_card["combined"]["IP"] = [bad_card["combined"]["IP"][0], "../v1"]
    (broken / "card.json").write_text(json.dumps(bad_card))
    with pytest.raises(InputError, match="no part for output IP") as err:
        load_measurer(broken)
    assert err.value.field == "combined.IP"
    shutil.rmtree(broken)
    # one member replaced after combining: refused, naming the output
    member = tmp_path / "home" / "models" / "empathy.IP" / "v1" / "card.json"
    member.write_text(member.read_text() + " ")
    with pytest.raises(InputError, match="replaced since it was combined") as err:
        load_measurer(path)
    assert err.value.field == "combined.IP"
    assert sorted(p.name for p in (tmp_path / "home" / "models" / "empathy").iterdir()) == [
        "v1", "v2"]  # fmt: skip
