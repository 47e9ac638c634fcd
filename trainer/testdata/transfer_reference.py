"""Python's side of the transfer-learning test: argv = backbone dir, export
dir, x.npy (tfcat's input: BGR, /255), out dir. Writes features.npy (the
backbone on the same images in its own preprocessing: RGB, [-1, 1]) and
probabilities.npy (the exported combined SavedModel on x)."""
import os
import sys

import numpy as np
import tensorflow as tf

base, export, xfile, out = sys.argv[1:5]
x = np.load(xfile).astype(np.float32)
rgb = x[..., ::-1]
pre = (rgb * np.float32(255.0 / 127.5) + np.float32(-1.0)).astype(np.float32)
bb = tf.saved_model.load(base).signatures["serving_default"]
feats = list(bb(tf.constant(pre)).values())[0].numpy()
np.save(os.path.join(out, "features.npy"), feats.astype(np.float32))
m = tf.saved_model.load(export).signatures["serving_default"]
probs = m(images=tf.constant(x))["probabilities"].numpy()
np.save(os.path.join(out, "probabilities.npy"), probs.astype(np.float32))
