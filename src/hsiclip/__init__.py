"""hsiclip: vision-language hyperspectral image classification with curated text prompts.

The API (`load_scene`, `train`, `load_run`, `scene_of`, `create_model`, `list_models`) is imported on first use, so that
`import hsiclip` and the command line start without loading PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = ["__version__", "create_model", "list_models", "load_run", "load_scene", "scene_of", "train"]

if TYPE_CHECKING:
    from .api import create_model, list_models, load_run, load_scene, scene_of, train


def __getattr__(name: str) -> Any:
    if name in __all__[1:]:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'hsiclip' has no attribute {name!r}")
