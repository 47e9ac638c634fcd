#!/usr/bin/env bash
# Fine-tuning a backbone tfcat trained itself (issue 29), on Fashion-MNIST from
# Debian's dataset-fashion-mnist package, as accuracy.sh's transfer benchmark:
#
# 1. The backbone: --conv 32,64 --fc 128 at 28x28x1, trained on the eight classes
#    other than shirt and T-shirt/top (48,000 images), 10 epochs, exported;
#    its features are the flattened conv output (flatten/Reshape:0), so its
#    trainable variables are conv1's and conv2's kernels and biases (4).
# 2. Phase 1, per seed: a softmax head on the frozen backbone, 100 + 100 images of
#    shirt and T-shirt/top, batches of 32, 600 steps (100 epochs), Adam 3e-4.
# 3. Phase 2, from a copy of that checkpoint each, 600 more steps (to 1,200):
#      frozen   --resume, the backbone still frozen (the head alone, as long)
#      ft-all   --resume --fine-tune all (both conv layers)
#      ft-top2  --resume --fine-tune 2 (conv2's kernel and bias: the top layer)
#    the fine-tuned variables at --base-lr's default, --lr / 10 = 3e-5; the
#    order of the three arms alternates from seed to seed, so that the load
#    of a shared machine falls on each alike.
#
# Test accuracy on the 2,000 test images of the two classes; seconds per step
# from each run's history.jsonl (the step lines' elapsed_s, from the run's
# first step line to its last: no start-up, no feature caching).
#
# The seeds are fixed here, before any run: 1 2 3. TFCAT (default bin/tfcat)
# is the binary; WORK (default a temporary folder) keeps the data and backbone.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tfcat=${TFCAT:-$root/bin/tfcat}
work=${WORK:-$(mktemp -d)}
seeds="1 2 3"
cd "$work"
echo "finetune: $("$tfcat" version | head -1), work folder $work"
acc() { sed -n 's/.*"accuracy": *\([0-9.]*\).*/\1/p' "$1" | head -1; }
# secs DIR RUN: seconds per step of the RUN-th run (1-based) in DIR's history.
secs() {
  python3 - "$1/history.jsonl" "$2" <<'EOF'
import json, sys
run, pts = 0, []
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "run":
        run += 1
    elif e["event"] == "step" and run == int(sys.argv[2]):
        pts.append((e["step"], e["elapsed_s"]))
(s0, t0), (s1, t1) = pts[0], pts[-1]
print(f"{(t1 - t0) / (s1 - s0):.5f}")
EOF
}

held=shirt,tshirt-top
eight=trouser,pullover,dress,coat,sandal,sneaker,bag,ankle-boot
[ -d tr8-train ] || "$tfcat" data fashion-mnist --out tr8-train --classes $eight >/dev/null
[ -d tr2-train ] || "$tfcat" data fashion-mnist --out tr2-train --classes $held --limit 100 >/dev/null
[ -d tr2-test ] || "$tfcat" data fashion-mnist --out tr2-test --split test --classes $held >/dev/null
if [ ! -d backbone8-sm ]; then # kept between runs in WORK: it does not depend on the seed
  start=$(date +%s)
  rm -rf backbone8
  "$tfcat" train --data tr8-train --size 28 --channels 1 --conv 32,64 --fc 128 --batch 64 --epochs 10 --validation 0 \
    --lr 1e-3 --seed 1 --model-dir backbone8 -q
  "$tfcat" export --model backbone8 --out backbone8-sm -q
  echo "finetune: backbone on $eight (48,000 images) trained and exported in $(($(date +%s) - start)) s"
fi
# EXTRA (default none) adds flags to both phases of every arm, e.g.
# EXTRA=--augment: random flips, rotations and zooms keep the head from
# fitting the 200 images outright, so phase 2 still has a gradient to follow.
common=(--data tr2-train --batch 32 --validation 0 --lr 3e-4 ${EXTRA:-})
i=0
for seed in $seeds; do
  rm -rf "p1-$seed"
  "$tfcat" train "${common[@]}" --base backbone8-sm --base-output flatten/Reshape:0 --base-channels bgr --base-scale 0,1 \
    --iterations 600 --seed $seed --model-dir "p1-$seed" -q
  "$tfcat" eval --model "p1-$seed" --data tr2-test --format json -q > "e-p1-$seed.json"
  echo "finetune: seed $seed phase 1 (head, 600 steps) $(acc "e-p1-$seed.json") test accuracy, $(secs "p1-$seed" 1) s/step"
  arms="frozen ft-all ft-top2"
  [ $((i % 2)) = 1 ] && arms="ft-top2 ft-all frozen"
  i=$((i + 1))
  for arm in $arms; do
    flags=()
    case $arm in
    ft-all) flags=(--fine-tune all) ;;
    ft-top2) flags=(--fine-tune 2) ;;
    esac
    rm -rf "$arm-$seed"
    cp -r "p1-$seed" "$arm-$seed"
    "$tfcat" train "${common[@]}" --resume --iterations 1200 --seed $seed --model-dir "$arm-$seed" -q "${flags[@]}"
    "$tfcat" eval --model "$arm-$seed" --data tr2-test --format json -q > "e-$arm-$seed.json"
    echo "finetune: seed $seed phase 2 $arm (600 more steps) $(acc "e-$arm-$seed.json") test accuracy, $(secs "$arm-$seed" 2) s/step"
  done
done
