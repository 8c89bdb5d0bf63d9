"""Train the de-identification token classifier (``mindcommons.deid.learned``).

Usage: python benchmarks/deid_train.py [--gold ../shared/data/deid] [--out PATH]
       [--add T] [--add-numbers T] [--veto-high T] [--veto-balanced T] [--c C]
       [--synthetic-patients N] [--dims D] [--groups self,self_cap] [--cv]

Training words come from (1) notes the project generates (``synth`` sites with injected
identifiers and their offsets, English notes only) and (2), with ``--gold``, the PhysioNet
*dev* half (``benchmarks/deid.py`` split, seed 2024). Only the features are used: classes of
words (shape, case, gazetteer and dictionary membership, the rule detectors' outputs), never
the words, so the written model holds no string from any note. With ``--dims D`` (default 48)
each word also gets D numbers: its MiniLM wordpiece vector projected on directions fitted on our
own word lists (``deid.wordvec``), for the feature groups in ``--groups``; the file then holds
that projection and the weights, numbers only. The defaults are the settings chosen by ``--cv``
(they rewrite the shipped file byte for byte). The test half stays held out.
``--cv`` prints 2-fold token recall/precision on the dev half at several thresholds (pick the
threshold there, never on the test half). Deterministic: same inputs, same file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deid import split

from mindcommons.deid.engine import candidates
from mindcommons.deid.learned import _NEVER_ADDED, MODEL_FILE, labelled, lexicon_words, train
from mindcommons.deid.resources import _DATA
from mindcommons.deid.wordvec import Projection, WordVectors, fit_projection

GOLD_KIND = {
    "HCPName": "NAME", "PTName": "NAME", "RelativeProxyName": "NAME", "PTNameInitial": "NAME",
    "Location": "LOCATION", "Date": "DATE", "DateYear": "DATE", "Phone": "PHONE",
    "Age": "ID", "Other": "ID",
    "NAME": "NAME", "LOCATION": "LOCATION", "HOSPITAL": "LOCATION", "DATE": "DATE",
    "PHONE": "PHONE", "AGE": "ID", "MRN": "ID", "EMAIL": "ID",
}  # fmt: skip


def rule_candidates(text: str) -> list[object]:
    return list(candidates(text, "en", detectors=["pattern", "name", "place", "clue", "repeat"]))


def synthetic_notes(patients: int, seed: int) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """English notes and transcripts of generated sites, with the injected identifiers."""
    from mindcommons.synth.phi import with_phi
    from mindcommons.synth.site import generate_site

    out = []
    for index in (0, 3):
        site, spans = with_phi(generate_site(index, patients=patients, seed=seed), seed=seed)
        by_doc: dict[str, list[tuple[int, int, str]]] = {}
        for s in spans:
            by_doc.setdefault(s.document_id, []).append((s.start, s.end, GOLD_KIND[s.type]))
        for doc in site.documents:
            if doc.language == "en" and doc.document_id in by_doc:
                out.append((doc.text, by_doc[doc.document_id]))
    return out


def gold_notes(gold: Path) -> list[tuple[str, list[tuple[int, int, str]]]]:
    notes = json.loads((gold / "physionet-deid-1.1" / "notes.json").read_text(encoding="utf-8"))
    out = []
    for note in split(notes, "dev"):
        marks: list[list[object]] = note["spans"]  # type: ignore[assignment]
        spans = [(int(str(m[0])), int(str(m[1])), GOLD_KIND.get(str(m[2]), "ID")) for m in marks]
        out.append((str(note["text"]), spans))
    return out


def build(
    notes: list[tuple[str, list[tuple[int, int, str]]]],
    dense: tuple[WordVectors, list[str]] | None = None,
) -> tuple[list[list[str]], list[str], list[int], list[bool], NDArray[np.float32] | None]:
    feats: list[list[str]] = []
    labels: list[str] = []
    owner: list[int] = []
    ruled: list[bool] = []
    rows: list[NDArray[np.float32]] = []
    for k, (text, gold) in enumerate(notes):
        f, y, x = labelled(text, "en", gold, rule_candidates(text), dense)  # type: ignore[arg-type]
        ruled += ["rule=-" not in fs for fs in f]
        feats += f
        labels += y
        owner += [k] * len(y)
        if x is not None:
            rows.append(x)
    return feats, labels, owner, ruled, np.vstack(rows) if rows else None


ADD_GRID = (0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3, 0.5, 1.01)
NUM_GRID = (0.5, 0.8, 1.01)
VETO_GRID = (0.0, 0.03, 0.05, 0.1)


def cross_validate(
    feats: list[list[str]],
    labels: list[str],
    owner: list[int],
    c: tuple[float, float],
    n_notes: int,
    ruled: list[bool],
    dense: NDArray[np.float32] | None = None,
    projection: Projection | None = None,
    groups: tuple[str, ...] = (),
) -> None:
    """2-fold by note on the dev half: token recall/precision of the rules with the classifier's
    additions and vetoes (vetoes approximated per word), on a grid of thresholds."""
    scored: list[tuple[float, float, bool, bool, bool]] = []  # add p, keep p, rule, gold, number
    for fold in (0, 1):
        tr = [i for i in range(len(labels)) if owner[i] % 2 != fold]
        te = [i for i in range(len(labels)) if owner[i] % 2 == fold and owner[i] < n_notes]
        model = train(
            [feats[i] for i in tr], [labels[i] for i in tr], thresholds={}, c=c[0], c_add=c[1],
            dense=None if dense is None else dense[tr], projection=projection, groups=groups,
        )  # fmt: skip
        x = None if dense is None else dense[te]
        za, zk = model.dense_z(x, "add"), model.dense_z(x, "keep")
        for n, i in enumerate(te):
            num = any(f.startswith("shape=d") for f in feats[i])
            never = bool(_NEVER_ADDED.intersection(feats[i]))
            p = 0.0 if never else model.score(feats[i], 0.0 if za is None else float(za[n]))
            k = model.keep_score(feats[i], 0.0 if zk is None else float(zk[n]))
            scored.append((p, k, ruled[i], labels[i] != "O", num))
    for add in ADD_GRID:
        for add_num in NUM_GRID:
            for veto in VETO_GRID:
                tp = fn = fp = 0
                for p, keep, rule, gold, num in scored:
                    flagged = (rule and keep >= veto) or (
                        not rule and p >= (add_num if num else add)
                    )
                    tp += flagged and gold
                    fn += gold and not flagged
                    fp += flagged and not gold
                alone = [(p >= (add_num if num else add), gold) for p, _, _, gold, num in scored]
                a_tp = sum(f and g for f, g in alone)
                a_rec = round(a_tp / max(sum(g for _, g in alone), 1), 4)
                a_prec = round(a_tp / max(sum(f for f, _ in alone), 1), 4)
                print(json.dumps({"alone_recall": a_rec, "alone_precision": a_prec,
                                  "add": add, "add_numbers": add_num, "veto": veto,
                                  "recall": round(tp / max(tp + fn, 1), 4),
                                  "precision": round(tp / max(tp + fp, 1), 4)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=None, help="folder with the gold sets")
    parser.add_argument("--out", type=Path, default=Path(str(_DATA)) / "en" / MODEL_FILE)
    parser.add_argument("--add", type=float, default=0.15, help="add words scoring >= this")
    parser.add_argument(
        "--add-numbers", type=float, default=1.01, help="the same for numbers (1.01: never)"
    )
    parser.add_argument("--veto-high", type=float, default=0.03, help="veto below, at high")
    parser.add_argument("--veto-balanced", type=float, default=0.1, help="veto below, balanced")
    parser.add_argument("--c", type=float, default=0.5, help="inverse L2 strength, keep/kind")
    parser.add_argument("--c-add", type=float, default=2.0, help="inverse L2 strength, add")
    parser.add_argument("--synthetic-patients", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dims", type=int, default=48, help="MiniLM dims per word (0: none)")
    parser.add_argument("--groups", default="self,self_cap", help="MiniLM feature groups")
    parser.add_argument("--cv", action="store_true", help="2-fold CV on the dev half only")
    args = parser.parse_args()
    gold = gold_notes(args.gold) if args.gold else []
    synth = synthetic_notes(args.synthetic_patients, args.seed)
    groups = tuple(g for g in args.groups.split(",") if g) if args.dims > 0 else ()
    projection = fit_projection(lexicon_words("en"), args.dims) if groups else None
    vectors = (WordVectors(projection), list(groups)) if projection else None
    feats, labels, owner, ruled, dense = build(gold + synth, vectors)
    if args.cv:
        cross_validate(feats, labels, owner, (args.c, args.c_add), len(gold), ruled, dense,
                       projection, groups)  # fmt: skip
        return
    meta = {
        "trained_on": {
            "synthetic_notes": len(synth),
            "synthetic_seed": args.seed,
            "physionet_dev_notes": len(gold),
        },
        "words": len(labels),
        "identifier_words": sum(lb != "O" for lb in labels),
        "c": args.c,
        "c_add": args.c_add,
        "features": "word classes only (benchmarks/deid_train.py); no word of any note",
        "minilm": {
            "dims": args.dims if groups else 0,
            "groups": list(groups),
            "projection_fitted_on": "deid word lists (learned.lexicon_words)",
        },
    }
    thresholds = {"add": args.add, "add_numbers": args.add_numbers,
                  "veto_high": args.veto_high, "veto_balanced": args.veto_balanced}  # fmt: skip
    model = train(feats, labels, thresholds=thresholds, c=args.c, c_add=args.c_add, meta=meta,
                  dense=dense, projection=projection, groups=groups)  # fmt: skip
    args.out.write_text(
        json.dumps(model.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(json.dumps({"out": str(args.out), **meta, "weights": len(model.add) + len(model.keep)}))


if __name__ == "__main__":
    main()
