"""The exported recommenders in pure PyTorch: transformers' BertModel plus jaxrec's heads.

Imports torch and transformers only (never JAX or TensorFlow), so a serving machine needs
neither; this file can also be copied on its own. It reads a folder written by
`python -m jaxrec.export`: an HF BERT folder plus `jaxrec_heads.safetensors` (the head
parameters under jaxrec's names and layouts, e.g. a Dense `kernel` is [in, out]) and
`jaxrec_heads.json` (the architecture). `load(folder)` returns the folder's recommender:
`NewsRecommender` (PLM-NR) or `PairRecommender` (rating, click or multi-label; two towers or
a cross-encoder; with or without ID embeddings).
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


def _read_export(folder: str | Path, task: str, dtype: torch.dtype | None):
    """(transformers BertModel, head tensors, description) of an export folder of `task`."""
    folder = Path(folder)
    config = json.loads((folder / HEADS_CONFIG).read_text())
    if config.get("task") != task:
        raise ValueError(f"{folder / HEADS_CONFIG}: task {config.get('task')!r} is not {task!r}")
    bert = transformers.BertModel.from_pretrained(
        str(folder), local_files_only=True, add_pooling_layer=True, dtype=dtype
    ).eval()
    heads = load_file(str(folder / HEADS_WEIGHTS))
    dtype = dtype or next(bert.parameters()).dtype
    return bert, {k: v.to(dtype) for k, v in heads.items()}, config


def load(folder: str | Path, dtype: torch.dtype | None = None) -> nn.Module:
    """The recommender an export folder holds, whichever task it was trained for."""
    task = json.loads((Path(folder) / HEADS_CONFIG).read_text()).get("task")
    model = {"news": NewsRecommender, "pair": PairRecommender}.get(task)
    if model is None:
        raise ValueError(f"{Path(folder) / HEADS_CONFIG}: unknown task {task!r}")
    return model.from_pretrained(folder, dtype)


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
        """Loads a news folder written by `python -m jaxrec.export`."""
        return cls(*_read_export(folder, "news", dtype)).eval()

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


class PairRecommender(nn.Module):
    """jaxrec's rating, click or multi-label recommender at inference.

    Text vectors are BERT's last hidden states pooled (mean over real tokens, or [CLS]); two
    towers encode user and item texts apart, a cross-encoder reads `[CLS] user [SEP] item
    [SEP]`; a model without text reads none. ID embeddings and biases (row 0 for IDs unseen
    in training) join the text; the head is an MLP, or biased matrix factorisation whose
    factors are the ID embeddings plus projected (L2-normalised) text vectors; outputs become
    ratings clipped to the range, or probabilities.
    """

    def __init__(
        self, bert: transformers.BertModel, heads: dict[str, torch.Tensor], config: dict
    ) -> None:
        super().__init__()
        self.bert, self.config = bert, config
        self.p = nn.ParameterDict(
            {k.replace(".", "_"): nn.Parameter(v, requires_grad=False) for k, v in heads.items()}
        )
        self.user_rows = {u: i + 1 for i, u in enumerate(config["user_ids"])}
        self.item_rows = {v: i + 1 for i, v in enumerate(config["item_ids"])}

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: torch.dtype | None = None):
        """Loads a pair folder written by `python -m jaxrec.export`, with its tokenizer."""
        model = cls(*_read_export(folder, "pair", dtype)).eval()
        model.tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
        return model

    def tokenize(self, texts: list[str], kind: str) -> dict[str, torch.Tensor]:
        """User (`kind="user"`) or item texts as the token rows jaxrec trained on."""
        length = self.config[f"{kind}_len"]
        return dict(
            self.tokenizer(
                texts, max_length=length, padding="max_length", truncation=True,
                return_tensors="pt",
            )
        )  # fmt: skip

    def predict(
        self, user_texts: list[str], item_texts: list[str], user_ids: list[str], item_ids: list[str]
    ) -> torch.Tensor:
        """Predictions [B, K] for pairs given as texts and IDs."""
        users, items = self.tokenize(user_texts, "user"), self.tokenize(item_texts, "item")
        return self(users, items, self.id_rows(user_ids, "user"), self.id_rows(item_ids, "item"))

    def id_rows(self, ids: list[str], kind: str) -> torch.Tensor:
        """ID-embedding rows of user (`kind="user"`) or item IDs; 0 for IDs unseen in training."""
        rows = self.user_rows if kind == "user" else self.item_rows
        return torch.tensor([rows.get(i, 0) for i in ids], dtype=torch.long)

    @torch.no_grad()
    def encode(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        """Token ids [N, L] -> pooled text vectors [N, H]."""
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        if self.config["pooling"] == "cls":
            return hidden[:, 0]
        weights = attention_mask.to(hidden.dtype)[..., None]
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)

    @torch.no_grad()
    def forward(self, users, items, user_rows, item_rows) -> torch.Tensor:
        """Predictions [B, K] for pairs of user and item token rows [B, L] (`input_ids`,
        `attention_mask`, `token_type_ids`) and their ID rows [B] (`id_rows`)."""
        return self._to_prediction(self.logits(users, items, user_rows, item_rows))

    @torch.no_grad()
    def logits(
        self,
        users: dict[str, torch.Tensor],
        items: dict[str, torch.Tensor],
        user_rows: torch.Tensor,
        item_rows: torch.Tensor,
    ) -> torch.Tensor:
        """The head's outputs [B, K] before the sigmoid (or the clip to the rating range)."""
        if not self.config.get("use_text", True):
            u = i = None
        elif self.config["architecture"] == "cross":
            text = self.encode(**cross_tokens(users, items))
            return self._head([text], user_rows, item_rows).float()
        else:
            u, i = self.encode(**users), self.encode(**items)
        if self.config["head"] == "dot":
            return self._dot(u, i, user_rows, item_rows).float()
        parts = [] if u is None else [u, i, u * i]
        return self._head(parts, user_rows, item_rows).float()

    def _bias(self, user_rows, item_rows) -> torch.Tensor:
        bias = self.p["global_bias"]
        if self.config["user_ids"]:
            bias = bias + self.p["user_bias_embedding"][user_rows]
            bias = bias + self.p["item_bias_embedding"][item_rows]
        return bias

    def _dot(self, u, i, user_rows, item_rows) -> torch.Tensor:
        p, bias = self.p, self._bias(user_rows, item_rows)
        f_user = f_item = 0
        if self.config["user_ids"]:
            f_user, f_item = p["user_ids_embedding"][user_rows], p["item_ids_embedding"][item_rows]
        if u is not None:
            u, i = (torch.nn.functional.normalize(x, dim=-1, eps=1e-6) for x in (u, i))
            bias = bias + u @ p["user_text_bias_kernel"] + i @ p["item_text_bias_kernel"]
            f_user = f_user + u @ p["user_factor_kernel"] + p["user_factor_bias"]
            f_item = f_item + i @ p["item_factor_kernel"] + p["item_factor_bias"]
        return (f_user * f_item).sum(dim=-1, keepdim=True) + bias

    def _head(self, parts: list[torch.Tensor], user_rows, item_rows) -> torch.Tensor:
        p = self.p
        if self.config["user_ids"]:
            parts = [*parts, p["user_ids_embedding"][user_rows], p["item_ids_embedding"][item_rows]]
        x = torch.cat(parts, dim=-1) @ p["hidden_kernel"] + p["hidden_bias"]
        x = torch.nn.functional.gelu(x, approximate="tanh")  # jax.nn.gelu's default
        return x @ p["out_kernel"] + p["out_bias"] + self._bias(user_rows, item_rows)

    def _to_prediction(self, out: torch.Tensor) -> torch.Tensor:
        """Outputs -> the rating clipped to the range, or probabilities."""
        if self.config["pair_task"] == "rating":
            low, high = self.config["rating_range"]
            return out.clamp(low, high)
        return torch.sigmoid(out)


def cross_tokens(user: dict[str, torch.Tensor], item: dict[str, torch.Tensor]) -> dict:
    """`[CLS] user [SEP]` and `[CLS] item [SEP]` rows -> `[CLS] user [SEP] item [SEP]` (the
    item's [CLS] dropped, its tokens in segment 1), as jaxrec's cross-encoder reads a pair."""
    ids = torch.cat([user["input_ids"], item["input_ids"][:, 1:]], dim=1)
    mask = torch.cat([user["attention_mask"], item["attention_mask"][:, 1:]], dim=1)
    segment = torch.cat(
        [torch.zeros_like(user["input_ids"]), torch.ones_like(item["input_ids"][:, 1:])], dim=1
    )
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": segment}
