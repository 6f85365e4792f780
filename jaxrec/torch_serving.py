"""The exported news recommender in pure PyTorch: transformers' BertModel plus jaxrec's heads.

Imports torch and transformers only (never JAX or TensorFlow), so a serving machine needs
neither; this file can also be copied on its own. It reads a folder written by
`python -m jaxrec.export`: an HF BERT folder plus `jaxrec_heads.safetensors` (the head
parameters under jaxrec's names and layouts, e.g. a Dense `kernel` is [in, out]) and
`jaxrec_heads.json` (the architecture).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file
from torch import nn

HEADS_WEIGHTS = "jaxrec_heads.safetensors"
HEADS_CONFIG = "jaxrec_heads.json"


class AdditiveAttention(nn.Module):
    """softmax(q . tanh(W x + b)) pooling over a masked sequence; all-masked rows give zeros."""

    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.proj_kernel = nn.Parameter(params["proj.kernel"], requires_grad=False)
        self.proj_bias = nn.Parameter(params["proj.bias"], requires_grad=False)
        self.query_kernel = nn.Parameter(params["query.kernel"], requires_grad=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(x @ self.proj_kernel + self.proj_bias)
        logits = (hidden @ self.query_kernel)[..., 0].float()
        keep = mask > 0
        weights = torch.softmax(logits.masked_fill(~keep, -1e9), dim=-1) * keep
        return torch.einsum("...t,...td->...d", weights.to(x.dtype), x)


class SelfAttention(nn.Module):
    """Flax `nnx.MultiHeadAttention` (kernels [in, heads, head_dim]) at inference."""

    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.p = nn.ParameterDict(
            {k.replace(".", "_"): nn.Parameter(v, requires_grad=False) for k, v in params.items()}
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        p = self.p
        q = torch.einsum("btd,dhk->bthk", x, p["query_kernel"]) + p["query_bias"]
        k = torch.einsum("btd,dhk->bthk", x, p["key_kernel"]) + p["key_bias"]
        v = torch.einsum("btd,dhk->bthk", x, p["value_kernel"]) + p["value_bias"]
        logits = torch.einsum("bqhk,bshk->bhqs", q / math.sqrt(q.shape[-1]), k)
        pair = (mask[:, None, :, None] > 0) & (mask[:, None, None, :] > 0)
        logits = logits.masked_fill(~pair, torch.finfo(logits.dtype).min)
        out = torch.einsum("bhqs,bshk->bqhk", torch.softmax(logits, dim=-1), v)
        return torch.einsum("bqhk,hko->bqo", out, p["out_kernel"]) + p["out_bias"]


class NewsRecommender(nn.Module):
    """PLM-NR at inference: BERT news encoder + pooling, user encoder, dot-product scores."""

    def __init__(
        self, bert: transformers.BertModel, heads: dict[str, torch.Tensor], config: dict
    ) -> None:
        super().__init__()
        self.bert, self.config = bert, config
        self.title_len = int(config["title_len"])

        def group(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in heads.items() if k.startswith(prefix)}

        self.news_pool = (
            AdditiveAttention(group("news_pool.")) if config["pooling"] == "attention" else None
        )
        self.user_mhsa = (
            SelfAttention(group("user_encoder.mhsa.")) if config["user_encoder"] == "mhsa" else None
        )
        self.user_pool = AdditiveAttention(group("user_encoder.pool."))

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: torch.dtype | None = None):
        """Loads a folder written by `python -m jaxrec.export`."""
        folder = Path(folder)
        config = json.loads((folder / HEADS_CONFIG).read_text())
        if config.get("task") != "news":
            raise ValueError(f"{folder / HEADS_CONFIG}: task {config.get('task')!r} is not 'news'")
        bert = transformers.BertModel.from_pretrained(
            str(folder), local_files_only=True, add_pooling_layer=True, dtype=dtype
        ).eval()
        heads = load_file(str(folder / HEADS_WEIGHTS))
        dtype = dtype or next(bert.parameters()).dtype
        return cls(bert, {k: v.to(dtype) for k, v in heads.items()}, config).eval()

    @torch.no_grad()
    def encode_news(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """Token ids [N, L] -> news vectors [N, D]."""
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        if self.news_pool is None:
            return hidden[:, 0]
        return self.news_pool(hidden, attention_mask)

    @torch.no_grad()
    def encode_users(self, clicked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Clicked news vectors [B, H, D] with mask [B, H] -> user vectors [B, D]."""
        if self.user_mhsa is not None:
            clicked = self.user_mhsa(clicked, mask)
        return self.user_pool(clicked, mask)

    @torch.no_grad()
    def score(self, users: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Users [B, D] and their candidates' vectors [B, C, D] -> scores [B, C]."""
        return torch.einsum("bd,bcd->bc", users, candidates)
