"""One record per trained (system, scene, protocol, seed): its metrics, costs, recipe and provenance, as JSON.

Every command that trains writes the same `Record`; a `RecordStore` keeps them at
`<root>/<scene>/<protocol>[-<share>]/<system>/seed<S>[-ep<E>].json`, written atomically, so that a loop over
records (a comparison, a table of the paper) resumes with what it had finished.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .version import __version__


@functools.cache
def code_version() -> str:
    """The package version, and the git commit when run from a checkout (`+dirty` with uncommitted changes)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], capture_output=True,
                             text=True, timeout=10, cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{out}" if out else __version__


@dataclass
class Record:
    """What one training run measured. `to_dict` is the JSON schema of the committed records."""

    model: str  # system name
    label: str  # its row label
    kind: str  # "vlm", "baseline" or "classical"
    scene: str
    protocol: str  # as tagged: "paper", "leakfree-w15", ...
    fraction: float  # per-class training share of the split
    seed: int
    epochs: int | None  # as trained (None: not trained by epochs)
    paper_epochs: int | None  # the system's own count on this scene
    oa: float  # overall accuracy (%)
    aa: float  # mean per-class accuracy (%)
    kappa: float  # Cohen's kappa (x100)
    per_class: list[float | None]  # accuracy per class (%), None where a class has no test pixel
    confusion: list[list[int]]  # (C, C), rows: true class
    trainable_params: int | None
    flops: int | None  # per sample, one forward pass
    train_s: float
    infer_s: float  # test-set inference
    class_names: list[str]
    n_train: int
    n_test: int
    classes_missing_in_test: list[str]
    device: str
    machine: str
    hsiclip: str  # the package version
    torch: str
    finished: str  # local time, "%Y-%m-%d %H:%M:%S"
    recipe: dict[str, Any] | None = None  # the resolved settings, flat (`section.field` for ours), seed left out
    code: str | None = None  # `code_version()` of the code that trained it
    train_count: int | None = None  # training pixels per class (`per_class`), when the split was cut to a count
    unseen: list[str] | None = None  # classes without training pixels (zero-shot)
    zero_shot: dict[str, Any] | None = None  # `zeroshot.zero_shot_metrics` of a zero-shot run
    prototypes: str | None = None  # "random": trained against random unit vectors, not the prompts' embeddings

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        optional = ("recipe", "code", "train_count", "unseen", "zero_shot", "prototypes")
        return {k: v for k, v in d.items() if not (k in optional and v is None)}


def record_stem(root: Path, scene: str, protocol: str, fraction: float, name: str, seed: int,
                epochs: int | None) -> Path:
    """Where the record of one (system, seed) pair lives, without suffix (its run folder has this path)."""
    tag = protocol if fraction == 0.1 else f"{protocol}-{fraction:g}"
    return Path(root) / scene / tag / name / (f"seed{seed}" + ("" if epochs is None else f"-ep{epochs}"))


class RecordStore:
    """Records under one folder, keyed by their stem (`record_stem`); each `<stem>.json`, its run at `<stem>/`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def stem(self, scene: str, protocol: str, fraction: float, name: str, seed: int, epochs: int | None) -> Path:
        return record_stem(self.root, scene, protocol, fraction, name, seed, epochs)

    @staticmethod
    def load(stem: Path) -> dict[str, Any] | None:
        path = stem.with_suffix(".json")
        return json.loads(path.read_text()) if path.is_file() else None

    @staticmethod
    def save(stem: Path, record: Record | dict[str, Any]) -> Path:
        """Write `<stem>.json` atomically (a reader never sees half a record)."""
        path = stem.with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.part")
        data = record.to_dict() if isinstance(record, Record) else record
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.rename(path)
        return path
