#!/usr/bin/env bash
# The README's first command: sets up what tfcat needs (Debian's Fashion-MNIST,
# libtensorflow), builds tfcat, and runs the tutorial's workflow on real images:
# a two-class Fashion-MNIST folder (T-shirt/top vs Trouser), training, evaluation
# on the test split, and predictions for a few images. Output goes to demo/
# (TFCAT_DEMO_DIR overrides).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup-debian.sh
bash scripts/install-libtensorflow.sh
make --no-print-directory build
tfcat=$root/bin/tfcat
out=${TFCAT_DEMO_DIR:-$root/demo}
rm -rf "$out"
mkdir -p "$out"
cd "$out"
"$tfcat" version
echo
echo "== data: Fashion-MNIST T-shirt/top vs Trouser as class folders of PNG files"
"$tfcat" data fashion-mnist --out train --classes tshirt-top,trouser
"$tfcat" data fashion-mnist --out test --split test --classes tshirt-top,trouser
echo
echo "== train: the tutorial's network at 28x28x1, 3 epochs, checkpoints in $out/model"
"$tfcat" train --data train --size 28 --channels 1 --epochs 3 --lr 1e-3 --model-dir model
echo
echo "== eval on the test split"
"$tfcat" eval --model model --data test
echo
echo "== predict a few test images"
trousers=(test/trouser/*.png)
tshirts=(test/tshirt-top/*.png)
"$tfcat" predict -q --model model "${trousers[@]:0:2}" "${tshirts[@]:0:2}"
echo
echo "The model is in $out/model (dogs-cats-model.meta, .index, .data-00000-of-00001, checkpoint):"
echo "  Python: tf.compat.v1.train.import_meta_graph('$out/model/dogs-cats-model.meta')"
echo "  tfcat:  $tfcat predict --model $out/model IMAGE..."
