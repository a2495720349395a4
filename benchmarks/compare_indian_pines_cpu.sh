#!/usr/bin/env bash
# The Indian Pines comparison on a 2-core CPU: results/compare_indian_pines.md (paper protocol, every system),
# results/compare_indian_pines_leakfree.md and results/protocols.md (leak-free protocol, the systems that fit a CPU).
# Order: the light systems' four seeds, the same under the leak-free protocol, then the heavy systems seed by seed.
# Every call is resumable (finished (system, seed) pairs are skipped), so the script can be stopped and started again
# at any point; the intermediate calls write their tables to runs/ and only the last two lines write results/.
# Reduced epochs (the paper's count in brackets in the table): the heavy systems cannot run their papers' epochs here;
# test-set inference alone takes 1.5-17 minutes per seed for 3D-CNN, HybridSN, morphFormer, HiT, DCTN, GAF-NAU and
# SS-TMNet on this CPU (9,224 test windows).
# The per-(system, seed) records (small JSON files) are committed under results/records/compare, so that a later
# session, or a machine with a GPU, extends the tables instead of starting again; weights and run folders beside
# them are not committed (.gitignore).
set -euo pipefail
DATA=${HSICLIP_DATA_DIR:-../shared/data}
LIGHT=ours,flagship,mcls_clip,vision_only,ssftt,forward_forward,svm,rf,cnn2d,vit
LIGHT_EPOCHS=(--epochs cnn2d=30 --epochs vit=5)
HEAVY=hybridsn,cnn3d,morphformer,hit,dctn,gaf_nau,sstmnet
HEAVY_EPOCHS=(--epochs hybridsn=3 --epochs cnn3d=2 --epochs morphformer=3 --epochs hit=2 --epochs dctn=2
              --epochs gaf_nau=1 --epochs sstmnet=1)
run() { hsiclip compare --scene indian_pines --data-dir "$DATA" --work-dir results/records/compare --quiet "$@"; }
run --models $LIGHT --seeds 0,1,2,3 "${LIGHT_EPOCHS[@]}" --out runs/compare/tables
run --models $LIGHT --seeds 0,1,2,3 "${LIGHT_EPOCHS[@]}" --protocol leakfree --out runs/compare/tables
for seed in 0 1 2 3; do run --models $HEAVY --seeds $seed "${HEAVY_EPOCHS[@]}" --out runs/compare/tables; done
# the cross-field protocol (training on one region per class, testing on unseen fields) for the classical rows only
run --models svm,rf --seeds 0,1,2,3 --protocol crossfield \
    --note "Produced by benchmarks/compare_indian_pines_cpu.sh on the real Indian Pines scene (../shared/data)."
# the tables over every finished pair (run this line alone to tabulate a partly finished comparison). The systems
# that benchmarks/full_budget_cpu.sh has run at their papers' epochs drop out of TABLE_EPOCHS: their full-budget
# records are then tabulated, the others stay in the tables' "reduced budget, not comparable" section.
TABLE_EPOCHS=("${HEAVY_EPOCHS[@]}")
run --models all --seeds 0,1,2,3 --protocol paper,leakfree --no-train "${TABLE_EPOCHS[@]}" \
    --note "Produced by benchmarks/compare_indian_pines_cpu.sh on the real Indian Pines scene (../shared/data); the seeds column lists the seeds each row has finished."
