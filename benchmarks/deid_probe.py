"""Probe: would a contextual tagger close the de-identification gap? (dev half only)

Usage: python benchmarks/deid_probe.py --gold ../shared/data/deid [--synthetic-patients 40]
       [--hidden 64] [--epochs 6] [--no-gru]

2-fold by note on the PhysioNet *dev* half (``benchmarks/deid.py`` split; generated notes
with injected identifiers are added to training only). Two detectors read the same per-word
features as the learned step (``deid.learned``: word classes, neighbours, MiniLM coordinates;
the rules' outputs left out, so each is a detector on its own):

- baseline: the learned step's linear ``add`` model (``learned.train``, shipped settings);
- a bidirectional GRU over the note's words (PyTorch), which sees the whole note.

Printed as JSON: each one's recall of non-number identifier words at 70/80/90% precision, and
how many dev identifier words the rules miss (what the learned step could still add there).
The test half is never read. Torch's own seed makes the GRU run repeatable on one machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deid_train import gold_notes, rule_candidates, synthetic_notes

from mindcommons.deid.learned import _NEVER_ADDED, _from_rules, labelled, load_model, train

Note = tuple[bool, list[list[str]], list[str], Any]  # (gold?, features, labels, dense rows)
Scored = list[tuple[float, bool, bool, bool]]  # (score, rule found it, identifier, number)


def _fold(notes: list[Note], n_gold: int, fold: int) -> tuple[list[int], list[int]]:
    train_ix = [i for i, n in enumerate(notes) if not (n[0] and i % 2 == fold)]
    return train_ix, [i for i in range(n_gold) if i % 2 == fold]


def _rows(note: Note, scores: Any) -> Scored:
    out: Scored = []
    for a, fs in enumerate(note[1]):
        never = bool(_NEVER_ADDED.intersection(fs))
        number = any(f.startswith("shape=d") for f in fs)
        out.append((0.0 if never else float(scores[a]), "rule=-" not in fs, note[2][a] != "O",
                    number))  # fmt: skip
    return out


def linear(notes: list[Note], n_gold: int) -> Scored:
    base = load_model("en")
    assert base is not None
    out: Scored = []
    for fold in (0, 1):
        tr, te = _fold(notes, n_gold, fold)
        model = train(
            [f for i in tr for f in notes[i][1]], [y for i in tr for y in notes[i][2]],
            thresholds={}, c=0.5, c_add=2.0, dense=np.vstack([notes[i][3] for i in tr]),
            projection=base.projection, groups=base.groups,
        )  # fmt: skip
        for i in te:
            za = model.dense_z(notes[i][3], "add")
            assert za is not None
            out += _rows(
                notes[i], [model.score(f, float(z)) for f, z in zip(notes[i][1], za, strict=True)]
            )
    return out


class _Tagger(torch.nn.Module):
    """Feature ids (summed embeddings) + dense rows -> a BiGRU over the note -> one logit."""

    def __init__(self, vocab: int, dense: int, hidden: int) -> None:
        super().__init__()
        self.emb = torch.nn.EmbeddingBag(vocab + 1, 48, mode="sum", padding_idx=0)
        self.inp = torch.nn.Linear(48 + dense, hidden)
        self.rnn = torch.nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(3 * hidden, 1)

    def forward(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(torch.cat([self.emb(ids), x], -1)))
        g, _ = self.rnn(h[None])
        return self.head(torch.cat([g[0], h], -1))[:, 0]  # type: ignore[no-any-return]


def _encode(note: Note, vocab: dict[str, int]) -> tuple[torch.Tensor, ...]:
    ids = [[vocab[f] for f in row if f in vocab] for row in note[1]]
    m = np.zeros((len(ids), max([1, *map(len, ids)])), np.int64)
    for a, r in enumerate(ids):
        m[a, : len(r)] = r
    y = torch.tensor([lab != "O" for lab in note[2]], dtype=torch.float32)
    return torch.tensor(m), torch.tensor(note[3]), y


def gru(notes: list[Note], n_gold: int, hidden: int, epochs: int) -> Scored:
    torch.manual_seed(0)
    out: Scored = []
    for fold in (0, 1):
        tr, te = _fold(notes, n_gold, fold)
        counts: dict[str, int] = {}
        for i in tr:
            for fs in notes[i][1]:
                for f in fs:
                    if not _from_rules(f):
                        counts[f] = counts.get(f, 0) + 1
        vocab = {f: j + 1 for j, f in enumerate(sorted(f for f, c in counts.items() if c >= 3))}
        data = {i: _encode(notes[i], vocab) for i in tr + te if notes[i][2]}
        net = _Tagger(len(vocab), notes[0][3].shape[1], hidden)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-5)
        rng = np.random.default_rng(fold)
        for epoch in range(epochs):
            total = 0.0
            for i in rng.permutation([i for i in tr if i in data]):
                ids, x, y = data[int(i)]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    net(ids, x), y, pos_weight=torch.tensor(3.0))  # fmt: skip
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss)
            print(f"fold {fold} epoch {epoch + 1}/{epochs}: loss {total / len(tr):.4f}",
                  file=sys.stderr)  # fmt: skip
        with torch.no_grad():
            for i in te:
                if i in data:
                    out += _rows(notes[i], torch.sigmoid(net(*data[i][:2])).numpy())
    return out


def alone(scored: Scored) -> dict[str, float]:
    """Recall of non-number identifier words at a precision of at least 70/80/90%."""
    ranked = sorted(((p, g) for p, _, g, number in scored if not number), reverse=True)
    positives = sum(g for _, g in ranked)
    got: dict[str, float] = {}
    for target in (0.7, 0.8, 0.9):
        best = tp = 0
        for k, (_, g) in enumerate(ranked, 1):
            tp += g
            if tp / k >= target:
                best = max(best, tp)
        got[f"recall_at_precision_{target}"] = round(best / max(positives, 1), 4)
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, required=True, help="folder with the gold sets")
    parser.add_argument("--synthetic-patients", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--no-gru", action="store_true", help="the linear baseline only")
    args = parser.parse_args()
    model = load_model("en")
    if model is None or model.vectors is None:
        raise SystemExit("the shipped English token model (with its MiniLM projection) is needed")
    dense = (model.vectors, list(model.groups))
    gold = gold_notes(args.gold)
    notes: list[Note] = []
    for k, (text, spans) in enumerate(gold + synthetic_notes(args.synthetic_patients, 7)):
        feats, labels, x = labelled(text, "en", spans, rule_candidates(text), dense)  # type: ignore[arg-type]
        notes.append((k < len(gold), feats, labels, x))
    words = [(rule, g) for n in notes[: len(gold)] for rule, g in
             (("rule=-" not in f, y != "O") for f, y in zip(n[1], n[2], strict=True))]  # fmt: skip
    result: dict[str, Any] = {
        "dev_notes": len(gold), "generated_training_notes": len(notes) - len(gold),
        "identifier_words": sum(g for _, g in words),
        "identifier_words_rules_miss": sum(g and not r for r, g in words),
        "linear_add (baseline)": alone(linear(notes, len(gold))),
    }  # fmt: skip
    if not args.no_gru:
        result[f"bigru_{args.hidden}"] = alone(gru(notes, len(gold), args.hidden, args.epochs))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
