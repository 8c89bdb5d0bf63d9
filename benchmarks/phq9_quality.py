"""PHQ-9 task quality with the embedded model: the old prompt against candidate prompts.

Synthetic notes/transcripts/messages (three sites: en, es, pt mixes) are paired with their
visit's PHQ-9; every variant scores the same items. Prints JSON: item MAE, total MAE,
band accuracy, item QWK (with 95% bootstrap intervals), evidence-verbatim rate,
parse rate, tokens and seconds per text.

    .venv/bin/python benchmarks/phq9_quality.py --items 24 --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from mindcommons.metrics import pool, site_stats
from mindcommons.models import load_model
from mindcommons.synth import SiteData, generate_site
from mindcommons.tasks import TASKS, EvalItem, QuestionnaireTask, run_task_direct
from mindcommons.tasks.phq9 import PHQ9

SENTENCES = "I barely sleep most nights. I feel hopeless every day. I still enjoy my music."
SENTENCE_ANSWERS = (
    (0, "I still enjoy my music."),
    (3, "I feel hopeless every day."),
    (2, "I barely sleep most nights."),
    *((0, "") for _ in range(6)),
)
QUOTED = replace(PHQ9, example_text=SENTENCES, example_answers=SENTENCE_ANSWERS)
VARIANTS: dict[str, QuestionnaireTask] = {
    "current": replace(
        PHQ9,
        example_text="I barely sleep and I feel hopeless every day. I still enjoy my music.",
        example_answers=(
            (0, "I still enjoy my music"),
            (3, "I feel hopeless every day"),
            (2, "I barely sleep"),
            *((0, "") for _ in range(6)),
        ),
        evidence_choices=False,
    ),
    "a_enum": replace(QUOTED, evidence_choices=True, evidence_first=False),
    "ab_enum_first": replace(QUOTED, evidence_choices=True, evidence_first=True),
    "ab_no_example": replace(
        QUOTED, evidence_choices=True, evidence_first=True, show_example=False
    ),
    "b_free_first": replace(QUOTED, evidence_choices=False, evidence_first=True),
}


def eval_items(site: SiteData) -> list[EvalItem]:
    """Each document with the PHQ-9 of its visit (document id ``<pid>-v<k>-<kind>``)."""
    phq: dict[str, list[list[int]]] = {}
    for measure in site.measures:
        if measure.instrument == "PHQ-9":
            phq.setdefault(measure.participant_id, []).append(list(measure.items))
    people = {p.participant_id: p for p in site.participants}
    out = []
    for doc in site.documents:
        visit = int(doc.document_id.rsplit("-", 2)[1][1:])
        answers = tuple(phq[doc.participant_id][visit - 1])
        person = people[doc.participant_id]
        out.append(
            EvalItem(
                document_id=doc.document_id,
                participant_id=doc.participant_id,
                kind=doc.kind,
                language=doc.language,
                date=doc.date.isoformat(),
                text=doc.text,
                instrument="PHQ-9",
                measure_date=doc.date.isoformat(),
                true_items=answers,
                true_total=sum(answers),
                attributes={"gender": person.gender, "country": person.country},
            )
        )
    return out


def pick_items(n: int, seed: int) -> list[EvalItem]:
    pooled: list[EvalItem] = []
    for index in range(3):
        pooled.extend(eval_items(generate_site(index, patients=12, seed=seed)))
    random.Random(seed).shuffle(pooled)
    return pooled[:n]


def summarise(results: list[Any]) -> dict[str, Any]:
    stats = site_stats(results, instrument="PHQ-9", n_boot=500, seed=1)
    group = pool({"all": stats}).pooled
    out: dict[str, Any] = {}
    for key in ("item_mae", "total_mae", "band_accuracy", "item_qwk", "evidence_verbatim_rate"):
        m = group.metrics[key]
        out[key] = None if m.value is None else [round(m.value, 3), m.low, m.high]
        if m.low is not None and m.high is not None and m.value is not None:
            out[key] = [round(m.value, 3), round(m.low, 3), round(m.high, 3)]
    out["parse_rate"] = group.metrics["parse_rate"].value
    n = max(group.n, 1)
    out["input_tokens_per_text"] = round(group.input_tokens / n, 1)
    out["output_tokens_per_text"] = round(group.output_tokens / n, 1)
    out["seconds_per_text"] = round(group.seconds / n, 2)
    predicted = [r.predicted_items for r in results]
    out["distinct_predictions"] = len(set(predicted))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    items = pick_items(args.items, args.seed)
    model = load_model("embedded", n_threads=args.threads)
    report: dict[str, Any] = {"items": len(items), "seed": args.seed, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants.split(","):
            task = f"phq9-bench-{name}"
            if task not in TASKS:
                TASKS.add(task, VARIANTS[name])
            results = run_task_direct(task, items, model, log_dir=Path(tmp), seed=0)
            report["variants"][name] = summarise(results)
            print(json.dumps({name: report["variants"][name]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
