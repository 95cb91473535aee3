"""The ONNX encoder: tokenizer + ONNX Runtime session + pooling, exactly as served."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from embedloop.core.models.onnx_runtime import choose_providers, session_options

MANIFEST = "manifest.json"
# What one forward pass costs beyond its tokens, in token-steps: on a CPU a call with one short
# row takes about as long as 10-20 extra tokens (benchmarks/serving.py measures the effect).
CALL_OVERHEAD_TOKENS = 16


@dataclass(frozen=True)
class TokenizedText:
    ids: np.ndarray  # int64, special tokens included, already cut to the model's maximum
    truncated: bool

    @property
    def n_tokens(self) -> int:
        return int(self.ids.shape[0])


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def plan_passes(sorted_lengths: np.ndarray, max_rows: int, overhead_tokens: int) -> list[tuple[int, int]]:
    """Cut texts sorted by length into forward passes ``[start, end)`` of least estimated cost.

    A pass costs about ``overhead_tokens + rows x longest row`` token-steps: padding is paid like
    real tokens, and every call has a fixed cost. One pass for a whole mixed batch pays for a lot
    of padding, one pass per text pays the call cost each time; dynamic programming over the
    sorted lengths finds the cheapest cut in O(n x max_rows).
    """
    n = len(sorted_lengths)
    best = np.zeros(n + 1)
    cut = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):
        width = sorted_lengths[end - 1]  # the longest row of any pass ending here
        starts = np.arange(max(0, end - max_rows), end)
        costs = best[starts] + overhead_tokens + (end - starts) * width
        i = int(np.argmin(costs))
        best[end], cut[end] = costs[i], starts[i]
    passes, end = [], n
    while end > 0:
        passes.append((int(cut[end]), end))
        end = int(cut[end])
    return passes[::-1]


def read_manifest(version_dir: Path) -> dict[str, Any]:
    return json.loads((version_dir / MANIFEST).read_text())


class OnnxEncoder:
    """Encodes texts with one graph (``int8`` or ``fp32``) of a registered version folder."""

    def __init__(
        self,
        version_dir: Path,
        graph: str = "int8",
        *,
        intra_op_threads: int = 0,
        allow_spinning: bool = False,
        use_gpu: bool = True,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        self.dir = Path(version_dir)
        self.manifest = manifest or read_manifest(self.dir)
        self.dimensions: int = int(self.manifest["dimensions"])
        self.max_seq_length: int = int(self.manifest["max_seq_length"])
        self.pooling: str = self.manifest["pooling"]
        self.normalize: bool = bool(self.manifest["normalize"])
        self.tokenizer = Tokenizer.from_file(str(self.dir / self.manifest["tokenizer"]))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.providers = choose_providers(use_gpu)
        self.session = ort.InferenceSession(
            str(self.dir / self.manifest["graphs"][graph]),
            sess_options=session_options(intra_op_threads, allow_spinning),
            providers=self.providers,
        )
        self.provider = self.session.get_providers()[0]
        self._input_names = {i.name for i in self.session.get_inputs()}
        self._output_name = self.session.get_outputs()[0].name

    # -- tokenization (cheap, on the request path) ------------------------------------------
    def tokenize(self, texts: list[str]) -> list[TokenizedText]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        return [
            TokenizedText(np.asarray(e.ids, dtype=np.int64), truncated=bool(e.overflowing))
            for e in encodings
        ]

    # -- inference (one padded batch) -------------------------------------------------------
    def embed_tokens(self, batch: list[np.ndarray]) -> np.ndarray:
        """Embeddings (float32, shape ``(len(batch), dimensions)``) for token-id arrays."""
        width = max(ids.shape[0] for ids in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : ids.shape[0]] = ids
            mask[row, : ids.shape[0]] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self.session.run([self._output_name], feed)[0]
        return self._pool(hidden, mask)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(hidden.dtype)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled = pooled.astype(np.float32, copy=False)
        if self.normalize:
            pooled = normalize_rows(pooled)
        return pooled

    def embed_sorted(self, batch: list[np.ndarray], sub_batch: int = 32,
                     overhead_tokens: int = CALL_OVERHEAD_TOKENS,
                     on_pass: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Like :meth:`embed_tokens`, but sorted by length and run in forward passes of similar
        length (at most ``sub_batch`` rows each, split where padding would cost more than a call).
        ``on_pass(rows, width)`` is told the shape of every pass."""
        lengths = np.array([ids.shape[0] for ids in batch])
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(batch), self.dimensions), dtype=np.float32)
        for start, end in plan_passes(lengths[order], sub_batch, overhead_tokens):
            idx = order[start:end]
            out[idx] = self.embed_tokens([batch[i] for i in idx])
            if on_pass is not None:
                on_pass(end - start, int(lengths[idx[-1]]))
        return out

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Embeddings of ``texts`` (offline work: benchmarks, parity, probes)."""
        return self.embed_sorted([t.ids for t in self.tokenize(texts)], batch_size)
