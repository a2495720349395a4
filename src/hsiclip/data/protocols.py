"""Split protocols, registered by name: how a seed splits a scene's labelled pixels, and what preprocessing sees.

- "paper": a random share of each class for training (the paper's and DCTN's protocol); PCA on every pixel;
- "leakfree": spatially disjoint strips, no test window containing a training pixel; PCA on training pixels;
- "crossfield": leak-free, each class trained on one region and tested mostly on fields never seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError
from ..registry import Registry
from .scenes import Scene
from .splits import Split, disjoint_split, random_split

LEAKFREE_WINDOW = 15  # the default margin window: our model's and most baselines' (HybridSN reads 25 x 25)


@dataclass(frozen=True)
class Protocol:
    """How the labelled pixels of a scene are split for a seed, and what preprocessing may look at."""

    name: str
    split: Callable[[Scene, int, float, int, int | None], Split]  # (scene, seed, share, window, count) -> split
    fit_on_train: bool  # PCA and scaling fitted on the training pixels only
    leak_free: bool  # no test window shares a pixel with a training pixel (the split needs a margin window)
    description: str


def _paper(scene: Scene, seed: int, fraction: float, window: int, count: int | None) -> Split:
    return random_split(scene.labels, fraction=fraction, count=count, seed=seed, class_names=scene.class_names)


def _disjoint(per_field: bool) -> Callable[[Scene, int, float, int, int | None], Split]:
    def split(scene: Scene, seed: int, fraction: float, window: int, count: int | None) -> Split:
        if count is not None:
            raise ConfigError("a per-class training count works under the paper protocol only; give a share")
        return disjoint_split(scene.labels, fraction=fraction, window=window, seed=seed,
                              class_names=scene.class_names, per_field=per_field)

    return split


PROTOCOLS: Registry[Protocol] = Registry("protocol")
PROTOCOLS.register("paper", Protocol(
    "paper", _paper, False, False,
    "a random share of each class's labelled pixels for training, the rest for testing; PCA fitted on every "
    "pixel of the scene (the paper's and DCTN's protocol); test windows overlap training pixels"))
PROTOCOLS.register("leakfree", Protocol(
    "leakfree", _disjoint(per_field=True), True, True,
    "per class, the training share is a strip at one side of each of its fields (in proportion to the "
    "fields' sizes); every labelled pixel within half a window of a training pixel is left out, so no test window "
    "contains a training pixel (the window is `-w<N>` in the protocol's name; systems that read a larger window "
    "are left out of it); PCA and scaling fitted on the training pixels only"))
PROTOCOLS.register("crossfield", Protocol(
    "crossfield", _disjoint(per_field=False), True, True,
    "leak-free like `leakfree`, but each class's training share is one compact region at one side of the "
    "class's extent, so most test pixels lie in fields never seen in training; PCA and scaling fitted on the "
    "training pixels only"))


def protocol_tag(protocol: str, window: int | None = None) -> tuple[str, int]:
    """The protocol's name as recorded (a leak-free one carries its margin window) and that window (0: none)."""
    if not PROTOCOLS.get(protocol).leak_free:
        return protocol, 0
    window = window or LEAKFREE_WINDOW
    return f"{protocol}-w{window}", window
