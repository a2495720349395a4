#!/usr/bin/env bash
# The Indian Pines comparison on a 2-core CPU (results/compare_indian_pines.md): the light systems' four seeds first,
# then the heavy systems seed by seed. Every phase is resumable: finished (system, seed) pairs are skipped.
# Reduced epochs (the paper's count in brackets): the heavy systems cannot run their papers' epochs here; test-set
# inference alone takes 5-17 minutes per seed for DCTN, HiT, SS-TMNet and GAF-NAU on this CPU.
set -euo pipefail
DATA=${HSICLIP_DATA_DIR:-../shared/data}
EPOCHS=(--epochs cnn2d=30 --epochs cnn3d=2 --epochs hybridsn=3 --epochs vit=5 --epochs morphformer=3
        --epochs hit=2 --epochs dctn=2 --epochs sstmnet=1 --epochs gaf_nau=1)
LIGHT=ours,mcls_clip,vision_only,ssftt,forward_forward,svm,rf,cnn2d,vit,hybridsn,cnn3d
HEAVY=morphformer,hit,dctn,gaf_nau,sstmnet
run() { hsiclip compare --scene indian_pines --data-dir "$DATA" --quiet "$@"; }
run --models $LIGHT --seeds 0 "${EPOCHS[@]:0:8}"
run --models $LIGHT --seeds 0,1,2,3 "${EPOCHS[@]:0:8}"
for seed in 0 1 2 3; do run --models $HEAVY --seeds $seed "${EPOCHS[@]:8}"; done
# the table over every finished pair (run this line alone to tabulate a partly finished comparison)
run --models all --seeds 0,1,2,3 --no-train "${EPOCHS[@]}" \
    --note "Produced by benchmarks/compare_indian_pines_cpu.sh (light systems seeds 0-3, then the heavy ones seed by seed), on the real Indian Pines scene (../shared/data), seeds 0-3."
