"""The ``lora`` Trainer through a real 2-site Flower federation (the generic train job)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mindcommons.federation import launcher
from mindcommons.lora.api import lora_params, train_federated
from mindcommons.lora.export import read_adapter
from mindcommons.policy import DEFAULT_ALLOWED_JOBS, set_allowed_jobs
from test_federation import CANARY, make_home


@pytest.mark.slow
def test_lora_adapter_trained_through_the_federation(tmp_path: Path) -> None:
    settings = make_home(tmp_path, {"site-a": 4, "site-b": 4}, canary_site="site-a")
    for site in ("site-a", "site-b"):
        set_allowed_jobs(settings.site_dir(site), [*DEFAULT_ALLOWED_JOBS, "train"])
    params = lora_params(rank=2, alpha=4.0, layers=2, steps=1, lr=0.02, val_limit=1,
                         max_length=700)  # fmt: skip
    params["heldout_fraction"] = 0.5  # 4 people per site: both sides non-empty
    out = tmp_path / "adapter"
    dump = tmp_path / "dump.jsonl"
    launcher.up(settings)
    try:
        result = train_federated(settings, params, sites=["site-a", "site-b"], rounds=1,
                                 out=out, timeout=1800, debug_dump=dump)  # fmt: skip
    finally:
        launcher.down(settings)
    assert result["missing"] == {}, result
    summary = result["training"]
    assert summary["trainer"] == "lora" and summary["sites"] == ["site-a", "site-b"]
    assert summary["site_data"]["site-a"]["n_train"] >= 1
    first, last = summary["history"][0]["validation"], summary["history"][-1]["validation"]
    assert first["n"] > 0 and last["loss"] < first["loss"]  # held-out loss fell
    assert summary["best_round"] == 1 and summary["artifact"] == str(out.resolve())
    adapter = read_adapter(out)
    assert adapter.card["training"]["mode"] == "federated"
    assert any(float(np.abs(w).max()) > 0 for w in adapter.weights[1::2])  # B moved
    replies = dump.read_text(encoding="utf-8")
    assert '"weights.0"' in replies and CANARY not in replies  # numbers only crossed
    assert CANARY.encode() not in (out / "adapter.gguf").read_bytes()
