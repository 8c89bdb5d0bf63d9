"""The ``phq9`` task: PHQ-9 item scores with verbatim evidence from a note or transcript."""

from __future__ import annotations

from mindcommons.tasks.spec import QuestionnaireTask

PHQ9 = QuestionnaireTask(
    name="phq9",
    instrument="PHQ-9",
    item_labels=(
        "little interest or pleasure",
        "feeling down or hopeless",
        "sleep problems",
        "tired, little energy",
        "poor appetite or overeating",
        "feeling bad about yourself",
        "trouble concentrating",
        "moving slowly or restless",
        "thoughts of death or self-harm",
    ),
    example_text="I barely sleep most nights. I feel hopeless every day. I still enjoy my music.",
    example_answers=(
        (0, "I still enjoy my music."),
        (3, "I feel hopeless every day."),
        (2, "I barely sleep most nights."),
        *((0, "") for _ in range(6)),
    ),
    # evidence picked by the grammar from the note's sentences: same scores as free
    # quotes on SmolLM2-135M, every quote verbatim (benchmarks/phq9_quality.py)
    evidence_choices=True,
)
