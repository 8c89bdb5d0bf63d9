"""The ``gad7`` task: GAD-7 item scores with verbatim evidence from a note or transcript."""

from __future__ import annotations

from mindcommons.tasks.spec import QuestionnaireTask

GAD7 = QuestionnaireTask(
    name="gad7",
    instrument="GAD-7",
    item_labels=(
        "nervous, anxious or on edge",
        "cannot stop or control worrying",
        "worrying too much about different things",
        "trouble relaxing",
        "so restless it is hard to sit still",
        "easily annoyed or irritable",
        "afraid something awful might happen",
    ),
    example_text="I worry about everything all day and I can't switch it off. I sleep fine.",
    example_answers=(
        (0, ""),
        (3, "I can't switch it off"),
        (3, "I worry about everything all day"),
        *((0, "") for _ in range(4)),
    ),
    max_tokens=448,
)
