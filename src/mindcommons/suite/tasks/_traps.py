"""Thinking traps: the label set, one-line definitions for prompts, and project-written
thoughts and situations for the ``thinking-traps`` and ``reframe`` synthetic samples.

The 13 traps and "not distorted" are those of Sharma et al. (2023) as merged by
``mindcommons.datasets.thinking_traps``. The definitions and examples below were written
for this project (no text from the public dataset).
"""

from __future__ import annotations

from collections.abc import Mapping

from mindcommons.datasets.thinking_traps import NOT_DISTORTED, TRAPS

LABELS: tuple[str, ...] = (*TRAPS, NOT_DISTORTED)

DEFINITIONS: Mapping[str, str] = {
    "all-or-nothing thinking": "seeing things in black and white, with no middle ground",
    "blaming": "holding others entirely responsible for how one feels or what happened",
    "catastrophizing": "expecting the worst possible outcome, or blowing a problem up",
    "comparing and despairing": "comparing oneself unfavourably with others and losing hope",
    "disqualifying the positive": "dismissing good things as not counting",
    "emotional reasoning": "treating a feeling as proof of a fact",
    "fortune telling": "predicting that things will turn out badly",
    "labeling": "putting a fixed, global label on oneself or someone else",
    "mind reading": "assuming one knows what others think, without evidence",
    "negative feeling or emotion": "being stuck on a painful feeling",
    "overgeneralizing": "drawing a sweeping rule from one event ('always', 'never')",
    "personalizing": "taking the blame for something one did not fully control",
    "should statements": "rigid rules about how oneself or others should or must act",
    NOT_DISTORTED: "a realistic thought that shows no thinking trap",
}

# (thought, trap) pairs written for this project, two per label.
THOUGHTS: tuple[tuple[str, str], ...] = (
    ("If I don't get top marks, the whole year was a waste.", "all-or-nothing thinking"),
    ("Either everyone at the party likes me or I'm a total outcast.", "all-or-nothing thinking"),
    ("It's my manager's fault that I'm this stressed all the time.", "blaming"),
    ("My sister ruined my birthday and my whole mood is on her.", "blaming"),
    ("My chest hurts, so it must be a heart attack and I'll die tonight.", "catastrophizing"),
    ("I missed one deadline, so I'll be fired and lose my flat.", "catastrophizing"),
    ("Everyone my age has a house and a partner and I have nothing.", "comparing and despairing"),
    (
        "My colleague learns so much faster than me; I'll never catch up.",
        "comparing and despairing",
    ),
    ("They only praised my talk to be polite.", "disqualifying the positive"),
    ("Passing the exam doesn't count, it was an easy year.", "disqualifying the positive"),
    ("I feel like a fraud, so I must be one.", "emotional reasoning"),
    ("I feel so guilty, I must have done something terrible.", "emotional reasoning"),
    ("The interview next week is going to go badly.", "fortune telling"),
    ("I know the treatment won't work for me.", "fortune telling"),
    ("I'm a complete failure.", "labeling"),
    ("He's just a selfish person.", "labeling"),
    ("My friend didn't text back because she's annoyed with me.", "mind reading"),
    ("The whole class thinks my question was stupid.", "mind reading"),
    ("I feel so lonely tonight and I can't shake it.", "negative feeling or emotion"),
    ("I'm so anxious about tomorrow that I feel sick.", "negative feeling or emotion"),
    ("I burnt dinner again; I always mess everything up.", "overgeneralizing"),
    ("One date went badly, so nobody will ever want me.", "overgeneralizing"),
    ("My son is struggling at school because I'm a bad parent.", "personalizing"),
    ("The team lost the contract because of my slide.", "personalizing"),
    ("I should be able to cope without any help.", "should statements"),
    ("I must never make a mistake at work.", "should statements"),
    ("I'm nervous about the appointment, but I've prepared my questions.", NOT_DISTORTED),
    ("The bus was late, so I'll take the earlier one next time.", NOT_DISTORTED),
)

# (situation, thought, traps) rows written for this project.
SITUATIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "I gave a presentation at work and stumbled over one slide.",
        "Everyone thinks I'm incompetent now.",
        ("mind reading", "labeling"),
    ),
    (
        "My friend cancelled our plans for the second time this month.",
        "Nobody ever wants to spend time with me.",
        ("overgeneralizing",),
    ),
    (
        "I got a B on an assignment I worked hard on.",
        "If it isn't an A, I've failed.",
        ("all-or-nothing thinking",),
    ),
    (
        "I have a job interview on Friday.",
        "I'm going to freeze and they'll laugh at me.",
        ("fortune telling", "catastrophizing"),
    ),
    (
        "My teenage daughter has been quiet and moody for weeks.",
        "It's my fault; I must have done something wrong as a mother.",
        ("personalizing",),
    ),
    (
        "I forgot to reply to an important email.",
        "I'm so useless, I should never forget anything.",
        ("labeling", "should statements"),
    ),
    (
        "My colleague got the promotion I applied for.",
        "She's better than me at everything and I'll always be stuck.",
        ("comparing and despairing", "overgeneralizing"),
    ),
    (
        "My partner said my cooking was nice.",
        "He only said that because he felt sorry for me.",
        ("disqualifying the positive", "mind reading"),
    ),
)
