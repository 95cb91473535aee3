"""A backward-compatible training objective (after Shen et al., "Towards Backward-Compatible
Representation Learning", CVPR 2020): besides ranking each query's own answer first among the
batch's documents as the model embeds them (multiple-negatives ranking), rank it first among the
same documents as the *parent* embeds them — the vectors clients stored before the update. The
parent is frozen; ``weight`` sets how much the second term counts (0: plain multiple-negatives
ranking, sentence-transformers' own loss, is used instead of this one).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def inputs_of(features: dict[str, Tensor]) -> dict[str, Tensor]:
    """The tokenizer's tensors only: a forward pass adds its outputs to the dict it is given."""
    return {k: v for k, v in features.items() if k in INPUTS}


class CompatibleRankingLoss(nn.Module):
    def __init__(self, model: nn.Module, parent: nn.Module, weight: float, scale: float = 20.0) -> None:
        super().__init__()
        self.model, self.weight, self.scale = model, weight, scale
        self.parent = [parent.eval().requires_grad_(False)]  # a list: not a submodule, never trained or saved

    def ranking(self, queries: Tensor, documents: Tensor) -> Tensor:
        scores = nn.functional.normalize(queries, dim=-1) @ nn.functional.normalize(documents, dim=-1).T
        return nn.functional.cross_entropy(scores * self.scale, torch.arange(len(queries), device=queries.device))

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        features = list(sentence_features)
        with torch.no_grad():
            stored = torch.cat([self.parent[0](inputs_of(f))["sentence_embedding"] for f in features[1:]])
        embedded = [self.model(inputs_of(f))["sentence_embedding"] for f in features]
        queries, documents = embedded[0], torch.cat(embedded[1:])
        return self.ranking(queries, documents) + self.weight * self.ranking(queries, stored.to(queries.dtype))
