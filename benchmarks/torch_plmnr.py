"""A straightforward PLM-NR in PyTorch + transformers: the baseline the news benchmarks beat.

What a competent PyTorch user writes from the PLM-NR paper: a `transformers.BertModel` news
encoder with additive-attention pooling, an additive-attention user encoder over the clicked
news vectors, dot-product scores, softmax cross-entropy over 1 clicked + K non-clicked
candidates, AdamW with gradient clipping. Every history and candidate title of every sample is
encoded (no sharing across samples), batched: the valid history slots of the whole batch and
all its candidates go through BERT as one batch of titles, trimmed to the longest title in it.
Empty history slots are skipped rather than encoded. With `trainable_layers=k` the bottom
layers and the embeddings are frozen and run in inference mode, without autograd.
"""

from __future__ import annotations

import numpy as np
import torch
import transformers
from transformers.masking_utils import create_bidirectional_mask

NEG_INF = -1e9


class AdditiveAttention(torch.nn.Module):
    def __init__(self, dim: int, hidden: int = 200) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(dim, hidden)
        self.query = torch.nn.Linear(hidden, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.query(torch.tanh(self.proj(x))).squeeze(-1)
        weights = logits.masked_fill(mask == 0, NEG_INF).softmax(-1) * (mask > 0)
        return torch.einsum("...t,...td->...d", weights, x)


class PLMNR(torch.nn.Module):
    def __init__(self, folder: str, trainable_layers: int = -1, hidden: int = 200) -> None:
        super().__init__()
        self.bert = transformers.BertModel.from_pretrained(
            folder, local_files_only=True, add_pooling_layer=False
        )
        dim = self.bert.config.hidden_size
        self.news_pool = AdditiveAttention(dim, hidden)
        self.user_pool = AdditiveAttention(dim, hidden)
        layers = self.bert.encoder.layer
        self.frozen = 0 if trainable_layers < 0 else len(layers) - trainable_layers
        if self.frozen:
            for module in (self.bert.embeddings, *layers[: self.frozen]):
                module.requires_grad_(False)

    def train(self, mode: bool = True) -> PLMNR:
        super().train(mode)
        if self.frozen:  # frozen layers run as at inference, as jaxrec's cached layers do
            for module in (self.bert.embeddings, *self.bert.encoder.layer[: self.frozen]):
                module.eval()
        return self

    def encode_news(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not self.frozen:
            hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        else:
            layers = self.bert.encoder.layer
            with torch.no_grad():
                x = self.bert.embeddings(input_ids=ids)
                # The mask in the form BertModel.forward gives its layers (for SDPA, or None
                # when nothing is padded).
                bias = create_bidirectional_mask(
                    config=self.bert.config, inputs_embeds=x, attention_mask=mask
                )
                for layer in layers[: self.frozen]:
                    x = _layer_out(layer(x, attention_mask=bias))
            for layer in layers[self.frozen :]:
                x = _layer_out(layer(x, attention_mask=bias))
            hidden = x
        return self.news_pool(hidden, mask)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores [B, 1 + K] of each sample's candidates."""
        hist_mask = batch["history_mask"]
        b, h = hist_mask.shape
        c = batch["cand_ids"].shape[1]
        valid = hist_mask.reshape(-1) > 0
        ids = torch.cat([batch["hist_ids"].flatten(0, 1)[valid], batch["cand_ids"].flatten(0, 1)])
        mask = torch.cat([batch["hist_att"].flatten(0, 1)[valid], batch["cand_att"].flatten(0, 1)])
        length = int(mask.sum(1).max())
        vecs = self.encode_news(ids[:, :length], mask[:, :length])
        n_hist = int(valid.sum())
        clicked = vecs.new_zeros(b * h, vecs.shape[-1])
        clicked[valid] = vecs[:n_hist]
        users = self.user_pool(clicked.view(b, h, -1), hist_mask)
        cands = vecs[n_hist:].view(b, c, -1)
        return torch.einsum("bd,bcd->bc", users, cands)


def _layer_out(out):
    # BertLayer returns a tuple in some transformers versions and a tensor in others.
    return out[0] if isinstance(out, tuple) else out


def softmax_loss(scores: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the clicked candidate (column 0)."""
    return torch.nn.functional.cross_entropy(scores, torch.zeros(len(scores), dtype=torch.long))


def make_step(model: PLMNR, lr: float, weight_decay: float, grad_clip: float):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    def step(batch: dict[str, torch.Tensor]) -> float:
        opt.zero_grad(set_to_none=True)
        loss = softmax_loss(model(batch))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        return float(loss)

    return step


def sample_batches(tokens: dict[str, np.ndarray], samples: dict[str, np.ndarray], batch_size: int):
    """Endless per-slot batches: every history and candidate slot gets its own token rows."""
    ids, att = (
        torch.from_numpy(tokens["input_ids"]).long(),
        torch.from_numpy(tokens["attention_mask"]).long(),
    )
    n = len(samples["candidates"]) // batch_size
    while True:
        for i in range(n):
            part = slice(i * batch_size, (i + 1) * batch_size)
            hist = torch.from_numpy(samples["history"][part]).long()
            cand = torch.from_numpy(samples["candidates"][part]).long()
            yield {
                "hist_ids": ids[hist],
                "hist_att": att[hist],
                "history_mask": torch.from_numpy(samples["history_mask"][part]).long(),
                "cand_ids": ids[cand],
                "cand_att": att[cand],
            }
