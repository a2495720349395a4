"""Parameter counts, FLOPs per sample (PyTorch's own FLOP counter, not hand-counted) and the machine they ran on.

FLOPs are those of matrix products, convolutions and attention, 2 per multiply-add (PyTorch's and fvcore's
convention); element-wise ops, norms, softmax and max-plus (morphological) layers are not counted.
"""

from __future__ import annotations

import os
import platform

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from .config import RunConfig


def count_parameters(module: nn.Module, trainable: bool | None = None) -> int:
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def _cpu_attention(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# PyTorch's counter knows the GPU attention kernels but not the CPU one, which it then counts as 0 FLOPs
CPU_ATTENTION = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,
                 torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward}


def flop_counter() -> FlopCounterMode:
    """PyTorch's FLOP counter, with the CPU attention kernel counted like the GPU ones."""
    return FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION)


@torch.no_grad()
def flops_per_sample(model: nn.Module, sample: torch.Tensor) -> int:
    """Floating-point operations (2 per multiply-add) of one forward pass on a batch of one, in eval mode."""
    was_training = model.training
    model.eval()
    with flop_counter() as counter:
        model(sample.unsqueeze(0))
    model.train(was_training)
    return int(counter.get_total_flops())


def describe_model(cfg: RunConfig) -> tuple[list[tuple[str, int | None, str]], str]:
    """Rows (part, parameters, trainable?) for `hsiclip info`, built without loading data or the text encoder."""
    from .data.scenes import get_scene
    from .models import create_vlm
    from .text.encoders import TextEncoder, resolve_encoder

    num_classes = len(get_scene(cfg.data.scene).class_names)
    spec = resolve_encoder(cfg.text.encoder)
    if spec is not None:
        text_dim, frozen = spec.dim, spec.params
    else:  # a free sentence-transformers name or path: load it once to learn its size
        enc = TextEncoder(cfg.text.encoder)
        text_dim, frozen = enc.model.get_sentence_embedding_dimension(), enc.params
    model = create_vlm(cfg.model, cfg.data.pca_components, torch.zeros(num_classes, text_dim))
    k = cfg.model.members
    members = list(model.members) if k > 1 else [model]
    times = f" (x{k} members)" if k > 1 else ""

    def total(part: str) -> int:  # summed over the members (their windows, so position tables, may differ)
        return sum(count_parameters(getattr(m, part)) for m in members)

    parts = [(f"vision encoder (masked ViT){times}", total("visual"))]
    if cfg.model.projection == "text":
        parts.append((f"text probe ({text_dim} -> {cfg.model.embed_dim}){times}", total("text_probe")))
    else:
        parts.append((f"vision projection ({cfg.model.embed_dim} -> {text_dim}){times}", total("visual_proj")))
    parts.append((f"logit scale{times}", k))
    trainable = count_parameters(model, trainable=True)
    rows: list[tuple[str, int | None, str]] = [(p, n, "yes") for p, n in parts]
    rows.append((f"text encoder {cfg.text.encoder} (frozen)", frozen, "no"))
    rows.append(("trainable", trainable, ""))
    rows.append(("frozen", frozen, ""))
    rows.append(("total", None if frozen is None else trainable + frozen, ""))
    window = torch.zeros(cfg.model.window, cfg.model.window, cfg.data.pca_components)
    flops = flops_per_sample(model, window)
    share = f", {100 * trainable / (trainable + frozen):.3f}% of all parameters trainable" if frozen else ""
    return rows, f"FLOPs per sample (vision forward + prototypes): {flops / 1e9:.4f} G{share}"


def machine() -> str:
    """CPU model, core count and torch threads (the table's timings depend on all three)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads"
