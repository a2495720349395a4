"""Inference-only rewrites of a trained model for the CPU: the same function, laid out to run fast.

The paper's ViT has 16 heads of width 4. PyTorch's attention kernels treat every (sample, head) pair as its own
tiny 26 x 26 product, so at inference attention and its softmax took about 60% of a forward pass on this CPU while
holding 2% of its FLOPs. `HeadsLastAttention` puts the heads on the innermost, contiguous axis (16 floats, one
AVX-512 register), so that TorchInductor's fused kernels vectorise across heads; the qkv and output weights are
permuted once, so the graph needs no transpose. `for_inference` swaps those modules in, compiles the model, and pads
every batch to one size so that it compiles once (measured in `benchmarks/predict_scaling.py`).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .layers import Attention


class HeadsLastAttention(nn.Module):
    """`layers.Attention` at inference with activations laid out (B, N, head_dim, heads): the same outputs."""

    def __init__(self, attn: Attention) -> None:
        super().__init__()
        d, h = attn.qkv.in_features, attn.heads
        self.heads, self.head_dim = h, d // h
        self.norm = attn.norm
        # qkv rows (three, head, d_head) -> (three, d_head, head); proj columns (head, d_head) -> (d_head, head)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.qkv.weight = nn.Parameter(attn.qkv.weight.detach().view(3, h, d // h, d).transpose(1, 2).reshape(3 * d, d)
                                       .contiguous(), requires_grad=False)
        self.proj = nn.Linear(d, d)
        self.proj.weight = nn.Parameter(attn.proj.weight.detach().view(d, h, d // h).transpose(1, 2).reshape(d, d)
                                        .contiguous(), requires_grad=False)
        self.proj.bias = nn.Parameter(attn.proj.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, N, D)
        b, n, d = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, 3, self.head_dim, self.heads)
        q, k, v = qkv[:, :, 0] * self.head_dim**-0.5, qkv[:, :, 1], qkv[:, :, 2]  # (B, N, d_head, H)
        attn = (q.unsqueeze(2) * k.unsqueeze(1)).sum(3).softmax(2)  # (B, N_query, N_key, H)
        out = (attn.unsqueeze(3) * v.unsqueeze(1)).sum(2)  # (B, N_query, d_head, H)
        return self.proj(out.reshape(b, n, d))


class FixedBatch(nn.Module):
    """Runs `model` on batches of exactly `size` (a shorter one is padded, its outputs cut), so a compiled model
    sees one shape only; longer inputs go through in chunks."""

    def __init__(self, model: nn.Module, size: int) -> None:
        super().__init__()
        self.model, self.size = model, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for s in range(0, len(x), self.size):
            chunk = x[s : s + self.size]
            if len(chunk) < self.size:  # pad with copies of the first sample
                chunk = torch.cat([chunk, chunk[:1].expand(self.size - len(chunk), *chunk.shape[1:])])
            outs.append(self.model(chunk)[: len(x) - s])
        return torch.cat(outs)


def heads_last(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode with every `layers.Attention` replaced by its `HeadsLastAttention`."""
    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, Attention):
                setattr(module, name, HeadsLastAttention(child))
    return model


def for_inference(model: nn.Module, example: torch.Tensor, batch_size: int, compile: bool = True) -> nn.Module:
    """`model` ready for large-scale prediction: heads-last attention, compiled by TorchInductor, on fixed batches.

    `example` is one input sample (e.g. a (w, w, K) window). Without `compile`, or where compiling fails (no C++
    compiler, an unsupported op), the model is returned as it is, in eval mode, with a warning in the second case.
    """
    model = model.eval()
    if not compile:
        return model
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            # TorchDynamo imports modules of torch's own that use the deprecated torch.jit.script_method
            warnings.filterwarnings("ignore", message=".*script_method", category=DeprecationWarning)
            fast = FixedBatch(torch.compile(heads_last(model), dynamic=False), batch_size)
            fast(example.unsqueeze(0))  # compiles now, so that a failure falls back here and not mid-scene
    except Exception as e:  # any compiler failure (no C++ compiler, an unsupported op) means: run eagerly
        warnings.warn(f"torch.compile failed ({type(e).__name__}: {e}); predicting without it (slower)",
                      RuntimeWarning, stacklevel=2)
        return model
    return fast
