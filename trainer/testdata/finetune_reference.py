"""The fine-tuning gradients' reference: argv = SavedModel, x.npy (tfcat's
input: BGR, /255), y.npy (one-hot), w.npy, b.npy (the head), out dir.
Writes, for each trainable variable of the backbone, the gradient of the
mean softmax cross-entropy of softmax(features(x)·w + b) under
tf.GradientTape, as <name with / as __>.npy."""
import os
import sys

import numpy as np
import tensorflow as tf

sm, xf, yf, wf, bf, out = sys.argv[1:7]
loaded = tf.saved_model.load(sm)  # kept: the signature only references its variables
fn = loaded.signatures["serving_default"]
x = np.load(xf)
# Keras MobileNetV2's input: RGB in [-1, 1].
x = tf.constant(x[..., ::-1] * 2.0 - 1.0, tf.float32)
y, w, b = np.load(yf), np.load(wf), np.load(bf)
tv = fn.trainable_variables
with tf.GradientTape() as tape:
    f = list(fn(x).values())[0]
    logits = tf.matmul(f, w) + b
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=logits))
grads = tape.gradient(cost, tv)
for v, g in zip(tv, grads):
    name = v.name.split(":")[0]
    np.save(os.path.join(out, name.replace("/", "__") + ".npy"), np.asarray(g, np.float32))
