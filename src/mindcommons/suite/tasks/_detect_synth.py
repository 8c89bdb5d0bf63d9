"""Project-written synthetic posts for the ``detect`` task (no IMHI text).

Two small sets shaped like IMHI's: a binary one (``synth-depression``: does the poster
suffer from depression?) and a multi-class one (``synth-stress``: what causes the
poster's stress?). A post is assembled, with a seeded generator, from an opener, one or
two sentences that carry the label, neutral filler and a closer; all phrases were
written for this project.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_OPENERS = (
    "Not sure where else to post this.",
    "Long time lurker, first post.",
    "Throwaway account for obvious reasons.",
    "Sorry if this is the wrong place.",
    "Just need to get this off my chest.",
    "Quick question for everyone here.",
)
_FILLER = (
    "I live with two roommates in a small flat.",
    "I started a new hobby last month, painting mostly.",
    "My dog is the best thing in my life right now.",
    "It has been raining all week here.",
    "I usually walk to the bus in the morning.",
    "I am in my late twenties.",
)
_CLOSERS = (
    "Does anyone else deal with this?",
    "Any advice is welcome.",
    "Thanks for reading.",
    "What would you do?",
    "Sorry for the long post.",
    "",
)

DEPRESSION_QUESTION = "Does the poster suffer from depression?"
DEPRESSION_LABELS = ("yes", "no")
_DEPRESSED = (
    "Nothing I used to love feels worth doing anymore.",
    "I have felt empty and numb for weeks and cannot explain it.",
    "Most days I cannot make myself get out of bed.",
    "I feel like a failure at everything and I am tired all the time.",
    "I stopped answering my friends because talking feels pointless.",
    "I sleep twelve hours and still wake up exhausted and hopeless.",
)
_NOT_DEPRESSED = (
    "I finally finished the bookshelf I was building and I am proud of it.",
    "Work is busy but I enjoy the people on my team.",
    "We had a great weekend at the lake with my cousins.",
    "I am looking for a good recipe for lentil soup.",
    "My exam went better than I expected and I am relieved.",
    "I have been running three times a week and I feel great.",
)

STRESS_QUESTION = "What is the stress cause of this post?"
STRESS_LABELS = ("work", "school", "family issues", "financial problem", "health issues")
_STRESS: dict[str, tuple[str, ...]] = {
    "work": (
        "My manager keeps moving every deadline forward and I work until midnight.",
        "There are layoffs coming at my job and I dread every meeting.",
        "My shift schedule changes every week and I cannot keep up.",
    ),
    "school": (
        "Finals start next week and I am behind in every course.",
        "My thesis advisor rejected my draft again and the defense is close.",
        "I failed the midterm and I might lose my place in the program.",
    ),
    "family issues": (
        "My parents fight every night and I am stuck in the middle.",
        "My sister stopped talking to me after the argument at the wedding.",
        "Taking care of my father after his stroke is wearing me down at home.",
    ),
    "financial problem": (
        "Rent went up again and I cannot cover it this month.",
        "My credit card debt keeps growing and the bills pile up.",
        "My car broke down and I have no savings to fix it.",
    ),
    "health issues": (
        "The doctor found something on my scan and I am waiting for results.",
        "My back pain is so bad that I cannot sit for long.",
        "I keep getting migraines and the medication is not helping.",
    ),
}


@dataclass(frozen=True)
class SynthPost:
    """One generated post with its set, question, label space and gold label."""

    set_name: str
    question: str
    labels: tuple[str, ...]
    text: str
    label: str

    @property
    def query(self) -> str:
        """The post in IMHI's instruction wording."""
        return f'Consider this post: "{self.text}" Question: {self.question}'


def _post(rng: random.Random, core: list[str]) -> str:
    parts = [rng.choice(_OPENERS), *core, rng.choice(_FILLER), rng.choice(_CLOSERS)]
    return " ".join(p for p in parts if p)


def synthetic_posts(n: int, seed: int = 0) -> list[SynthPost]:
    """``n`` posts alternating between the two sets, labels balanced within each set."""
    rng = random.Random(f"detect-synth:{seed}")
    out: list[SynthPost] = []
    for i in range(n):
        if i % 2 == 0:
            label = DEPRESSION_LABELS[(i // 2) % 2]
            pool = _DEPRESSED if label == "yes" else _NOT_DEPRESSED
            core = rng.sample(pool, k=2)
            out.append(
                SynthPost(
                    "synth-depression",
                    DEPRESSION_QUESTION,
                    DEPRESSION_LABELS,
                    _post(rng, core),
                    label,
                )
            )
        else:
            label = STRESS_LABELS[(i // 2) % len(STRESS_LABELS)]
            core = rng.sample(_STRESS[label], k=1)
            out.append(
                SynthPost("synth-stress", STRESS_QUESTION, STRESS_LABELS, _post(rng, core), label)
            )
    return out
