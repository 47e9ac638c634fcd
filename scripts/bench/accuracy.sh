#!/usr/bin/env bash
# Accuracy beyond the tutorial (issue 14), on Fashion-MNIST from Debian's
# dataset-fashion-mnist package. Long runs: nice them on a shared machine.
#   scripts/bench/accuracy.sh full    all 10 classes, 60,000 training images, 10,000 test
#   scripts/bench/accuracy.sh small   shirt vs tshirt-top, 500 training images, 3 seeds,
#                                     with and without augmentation at equal steps
#                                     (AUGMENT, default "--augment", are the flags;
#                                     MODES, default "plain augment", the runs;
#                                     bf16 trains with --precision bf16)
#   scripts/bench/accuracy.sh transfer  transfer learning (issue 15): a backbone trained on the
#                                     eight other classes (all 48,000 images), exported; a
#                                     softmax head on its flattened conv features vs the same
#                                     network from scratch, shirt vs tshirt-top, 100 training
#                                     images per class, 3 seeds, equal steps
# SEEDS (default "1 2 3") are the seeds of small and transfer; WORK keeps transfer's backbone.
# TFCAT (default bin/tfcat) is the binary; WORK (default a temporary folder) the data.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tfcat=${TFCAT:-$root/bin/tfcat}
work=${WORK:-$(mktemp -d)}
cd "$work"
acc() { sed -n 's/.*"accuracy": *\([0-9.]*\).*/\1/p' "$1" | head -1; }

case "${1:-}" in
full)
  [ -d fm-train ] || "$tfcat" data fashion-mnist --out fm-train >/dev/null
  [ -d fm-test ] || "$tfcat" data fashion-mnist --out fm-test --split test >/dev/null
  rm -rf full
  start=$(date +%s)
  "$tfcat" train --data fm-train --size 28 --channels 1 --batch 64 --epochs 20 --validation 0 \
    --conv 32,64,128 --fc 256 --batch-norm --dropout 0.4 --lr 1e-3 --lr-schedule cosine --flip \
    --seed 1 --model-dir full -q
  end=$(date +%s)
  "$tfcat" eval --model full --data fm-test --format json -q > full-eval.json
  echo "full: test accuracy $(acc full-eval.json), training $((end - start)) s"
  ;;
small)
  classes=shirt,tshirt-top
  [ -d sm-train ] || "$tfcat" data fashion-mnist --out sm-train --classes $classes --limit 250 >/dev/null
  [ -d sm-test ] || "$tfcat" data fashion-mnist --out sm-test --split test --classes $classes >/dev/null
  for seed in ${SEEDS:-1 2 3}; do
    for mode in ${MODES:-plain augment}; do
      flags=()
      [ $mode = augment ] && read -r -a flags <<< "${AUGMENT:---augment}"
      [ $mode = bf16 ] && flags=(--precision bf16) # issue 25: bf16 against plain (f32)
      rm -rf "m-$mode-$seed" "e-$mode-$seed.json"
      "$tfcat" train --data sm-train --size 28 --channels 1 --batch 32 --iterations 1500 --validation 0 \
        --lr 1e-3 --seed $seed --model-dir "m-$mode-$seed" -q "${flags[@]}"
      "$tfcat" eval --model "m-$mode-$seed" --data sm-test --format json -q > "e-$mode-$seed.json"
      echo "small: $mode ${flags[*]} seed $seed test accuracy $(acc "e-$mode-$seed.json")"
    done
  done
  ;;
transfer)
  held=shirt,tshirt-top
  eight=trouser,pullover,dress,coat,sandal,sneaker,bag,ankle-boot
  [ -d tr8-train ] || "$tfcat" data fashion-mnist --out tr8-train --classes $eight >/dev/null
  [ -d tr2-train ] || "$tfcat" data fashion-mnist --out tr2-train --classes $held --limit 100 >/dev/null
  [ -d tr2-test ] || "$tfcat" data fashion-mnist --out tr2-test --split test --classes $held >/dev/null
  net=(--size 28 --channels 1 --conv 32,64 --fc 128)
  if [ ! -d backbone8-sm ]; then # kept between runs in WORK: it does not depend on the seed
    start=$(date +%s)
    rm -rf backbone8
    "$tfcat" train --data tr8-train "${net[@]}" --batch 64 --epochs 10 --validation 0 --lr 1e-3 --seed 1 --model-dir backbone8 -q
    "$tfcat" export --model backbone8 --out backbone8-sm -q
    echo "transfer: backbone on $eight (48,000 images) trained and exported in $(($(date +%s) - start)) s"
  fi
  for seed in ${SEEDS:-1 2 3}; do
    t0=$(date +%s)
    rm -rf "head-$seed"
    "$tfcat" train --data tr2-train --base backbone8-sm --base-output flatten/Reshape:0 --base-channels bgr --base-scale 0,1 \
      --batch 32 --iterations 600 --validation 0 --lr 3e-4 --seed $seed --model-dir "head-$seed" -q
    "$tfcat" eval --model "head-$seed" --data tr2-test --format json -q > "e-head-$seed.json"
    line="transfer: seed $seed head $(acc "e-head-$seed.json") ($(($(date +%s) - t0)) s)"
    for lr in 3e-4 1e-3; do
      t0=$(date +%s)
      rm -rf "scratch-$lr-$seed"
      "$tfcat" train --data tr2-train "${net[@]}" --batch 32 --iterations 600 --validation 0 --lr $lr --seed $seed \
        --model-dir "scratch-$lr-$seed" -q
      "$tfcat" eval --model "scratch-$lr-$seed" --data tr2-test --format json -q > "e-scratch-$lr-$seed.json"
      line="$line, scratch lr $lr $(acc "e-scratch-$lr-$seed.json") ($(($(date +%s) - t0)) s)"
    done
    echo "$line"
  done
  ;;
*)
  echo "usage: $0 full|small|transfer" >&2
  exit 2
  ;;
esac
