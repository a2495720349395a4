"""Rewrite the `flops` of committed records with the current counter (`hsiclip.efficiency.flops_per_sample`).

The counter once missed the CPU attention kernel (issue 19), so every transformer's record undercounted its FLOPs.
FLOPs depend only on a system's recipe and input shape, not on its trained weights, so they are recounted on a fresh
model built from each record's own recipe. Run from the repository root, then re-tabulate (the `--no-train` line of
`benchmarks/compare_indian_pines_cpu.sh`):

    python benchmarks/recount_flops.py results/records
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from hsiclip.data.scenes import SCENES
from hsiclip.systems import get_system


def recount(record: dict) -> int:
    system = get_system(record["model"])
    if "recipe" in record:  # ours: the record's own settings
        recipe = system.recipe(record["scene"], seed=record["seed"], **record["recipe"])
        # (older records also list since-dropped knobs at their neutral values; every current field must agree)
        assert all(record["recipe"].get(k, v) == v for k, v in system.flat_recipe(recipe).items()), record["model"]
    else:  # the baselines' records predate stored recipes: their (fixed) architecture for the scene
        recipe = system.recipe(record["scene"], seed=record["seed"], epochs=record["epochs"])
    bands = SCENES.get(record["scene"]).shape[2]
    channels = system.components(recipe, bands) or bands
    return system.counts(system.create(recipe, channels, len(record["class_names"])), recipe, channels)[1]


def main(root: Path) -> None:
    changed: Counter[tuple[str, int, int]] = Counter()
    for path in sorted(root.rglob("*.json")):
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not record.get("flops"):
            continue
        flops = recount(record)
        if flops != record["flops"]:
            changed[(record["model"], record["flops"], flops)] += 1
            record["flops"] = flops
            path.write_text(json.dumps(record, indent=1) + "\n")
    for (name, old, new), n in sorted(changed.items()):
        print(f"{name:16s} {old:>13,} -> {new:>13,} FLOPs ({new / old - 1:+.1%}) in {n} records")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/records"))
