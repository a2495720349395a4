#!/usr/bin/env bash
# The full-budget campaign on this 2-core CPU (issue 21): every CPU-feasible network of the paper's Tables 1 and 8
# at its paper's (or its authors' code's) epochs, seeds 0-3, under the paper's and the leak-free protocol, two runs
# side by side on a local Ray cluster (one thread each). Every run checkpoints every 5 epochs beside its record in
# results/records/compare, so the script can be killed at any point (end of a session) and started again: finished
# (system, seed, protocol) records are skipped and unfinished runs resume from their last checkpoint.
# Planned from the seconds per epoch of the committed reduced-budget records (one thread, the other core busy):
# 2D-CNN ~1 s (200 epochs), ViT ~6 s (200), HybridSN ~19 s (100), 3D-CNN ~29 s (100), morphFormer ~28 s (200),
# GAF-NAU ~40 s (100), HiT ~77 s (100): about 6.5 core-hours per (seed, protocol), ~52 core-hours in all, ~26 h of
# wall time on two cores. DCTN (200; ~100 s per epoch here) and SS-TMNet (100; ~17 min per epoch) need a GPU.
# First the classical rows in their literature setups (every band, CV / out-of-bag choices), under all three
# protocols; then the networks, the shortest first, so that whole rows finish early.
# To edit src/ while it runs, run it from a frozen worktree and point WORK and OUT back at this checkout:
#   git worktree add /tmp/campaign HEAD && cd /tmp/campaign && PYTHONPATH=$PWD/src \
#     WORK=/path/to/main/results/records/compare bash benchmarks/full_budget_cpu.sh
set -euo pipefail
DATA=${HSICLIP_DATA_DIR:-../shared/data}
WORK=${WORK:-results/records/compare}
OUT=${OUT:-runs/compare/tables}
CPU_SYSTEMS=cnn2d,vit,hybridsn,cnn3d,morphformer,gaf_nau,hit
run() { hsiclip compare --scene indian_pines --data-dir "$DATA" --work-dir "$WORK" --quiet \
        --seeds 0,1,2,3 --executor ray --workers 2 --out "$OUT" "$@"; }
run --models svm,rf --protocol paper,leakfree
run --models svm,rf --protocol crossfield
for models in cnn2d,vit hybridsn,cnn3d morphformer,gaf_nau hit; do
    run --models "$models" --protocol paper,leakfree
done
echo "campaign finished: $CPU_SYSTEMS"
