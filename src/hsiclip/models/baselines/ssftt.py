"""SSFTT: a 3-D and a 2-D convolution, a Gaussian-weighted feature tokenizer, then a small transformer.

Sun, Zhao, Zheng & Wu, "Spectral–Spatial Feature Tokenization Transformer for Hyperspectral Image
Classification", IEEE TGRS 60:5522214, 2022. Sizes and training settings from the authors' code,
zgr6010/HSI_SSFTT at commit 994f5d7: cls_SSFTT_IP/SSFTTnet.py for the network (the same 153,224 parameters and
identical logits for identical weights, checked side by side) and cls_SSFTT_IP/IP_train.py for the data and training:
13x13 windows of whitened PCA (30 components); Conv3D 8@3x3x3 + BatchNorm + ReLU; Conv2D 64@3x3 + BatchNorm +
ReLU on the 8 x (bands - 2) stacked feature maps; a tokenizer turning the (w - 4)^2 pixel features into L = 4
tokens of width 64 (weights drawn from a Xavier normal, hence "Gaussian-weighted"); a class token and learned
position embedding; one pre-norm transformer block with 8 heads, MLP width 8, dropout 0.1 (and 0.1 on the
embeddings); a linear head on the class token. Adam lr 1e-3, batch 64, 100 epochs (10% of labels for training).
The authors' attention scales by 1/sqrt(64), the full width, not by the per-head width; kept here.
153,224 parameters on Indian Pines (counted from those layer sizes; neither the paper nor the code states one).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from .spec import BaselineSpec, register_baseline


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.scale = heads, dim**-0.5  # as the authors: full width, not dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, n, dim) -> (B, n, dim)
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        weights = (torch.einsum("bhnd,bhmd->bhnm", q, k) * self.scale).softmax(dim=-1)  # (B, h, n, n)
        mixed = torch.einsum("bhnm,bhmd->bhnd", weights, v)
        return self.out(rearrange(mixed, "b h n d -> b n (h d)"))


class _EncoderBlock(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), _SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(mlp_dim, dim), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SSFTT(nn.Module):
    def __init__(
        self,
        bands: int,
        num_classes: int,
        window: int = 13,
        *,
        conv3d_features: int = 8,
        conv2d_features: int = 64,
        num_tokens: int = 4,
        dim: int = 64,
        depth: int = 1,
        heads: int = 8,
        mlp_dim: int = 8,
        dropout: float = 0.1,
        emb_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.conv3d = nn.Sequential(  # kernel is (spectral, height, width)
            nn.Conv3d(1, conv3d_features, 3), nn.BatchNorm3d(conv3d_features), nn.ReLU(),
        )
        self.conv2d = nn.Sequential(
            nn.Conv2d(conv3d_features * (bands - 2), conv2d_features, 3), nn.BatchNorm2d(conv2d_features), nn.ReLU(),
        )
        # tokenizer: W_a scores every pixel for each of the L tokens; W_v maps pixel features to token width.
        # Shapes (1, L, 64) and (1, 64, dim) as the authors', so Xavier's fans (hence the init's spread) match theirs.
        self.token_attend = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, num_tokens, conv2d_features)))
        self.token_value = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, conv2d_features, dim)))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(nn.init.normal_(torch.empty(1, num_tokens + 1, dim), std=0.02))
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.blocks = nn.Sequential(*(_EncoderBlock(dim, heads, mlp_dim, dropout) for _ in range(depth)))
        self.head = nn.Linear(dim, num_classes)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.normal_(self.head.bias, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, w, w, C) -> (B, num_classes)
        x = self.conv3d(rearrange(x, "b h w c -> b 1 c h w"))  # (B, 8, C - 2, w - 2, w - 2)
        x = rearrange(x, "b f d h w -> b (f d) h w")  # spectral features stacked as channels for the 2-D stage
        x = rearrange(self.conv2d(x), "b f h w -> b (h w) f")  # (B, P, 64) with P = (w - 4)^2 pixels
        attend = torch.einsum("bpf,lf->blp", x, self.token_attend[0]).softmax(dim=-1)  # (B, L, P), sums to 1 over P
        tokens = torch.einsum("blp,bpf,fd->bld", attend, x, self.token_value[0])  # (B, L, dim)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        z = self.emb_dropout(torch.cat([cls, tokens], dim=1) + self.pos_embedding)  # (B, L + 1, dim)
        return self.head(self.blocks(z)[:, 0])


register_baseline(BaselineSpec(
    name="ssftt",
    build=SSFTT,
    citation="Sun et al., IEEE TGRS 2022",
    source="authors' code zgr6010/HSI_SSFTT at 994f5d7 (cls_SSFTT_IP/SSFTTnet.py, cls_SSFTT_IP/IP_train.py)",
    window=13,
    pca_components={"default": 30},
    epochs=100,
    batch_size=64,
    lr=1e-3,
))
