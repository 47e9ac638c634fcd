"""The --fine-tune-bn reference: argv = SavedModel (Keras MobileNetV2 of
backbones.py), x.npy (tfcat's input: BGR, /255), y.npy (one-hot), w.npy,
b.npy (the head), the fine-tuned layers (comma-separated), the batch
norms' momentum, a directory of tfcat's backbone variables after one step
(<name with / as __>.npy), a directory of the outputs of tfcat's ReLU6s
above the cut (<op scope>.npy: out_relu_1 for layer out_relu; their input
lies in (0, 6) where they do), out dir.

Rebuilds the Keras model with the SavedModel's weights, the fine-tuned
layers trainable and the others not (so that training=True puts only the
fine-tuned layers' batch norms in training mode, as tfcat does), and
writes into out:
  grads/<name>.npy   the gradients of the mean softmax cross-entropy of
                     softmax(features(x, training=True)·w + b) with
                     respect to the trainable variables (tf.GradientTape),
                     each ReLU6 above the cut passing gradients where
                     tfcat's does (its activation pattern; elsewhere it is
                     Keras's ReLU6 up to that pattern's rounding);
  relu_flips.npy     how many ReLU6 inputs lie on the other side of a kink
                     (0 or 6) in Keras than in tfcat;
  moving/<name>.npy  the fine-tuned batch norms' moving statistics after
                     that call (Keras updates them with the momentum);
  predict.npy        features(x, training=False) with tfcat's variables
                     after its step;
  train.npy          features(x, training=True) with those variables."""
import os
import sys

import numpy as np
import tensorflow as tf

sm, xf, yf, wf, bf, tuned, momentum, after, relus, out = sys.argv[1:11]
tuned = set(tuned.split(","))
momentum = float(momentum)
m = tf.keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, pooling="avg",
                                      weights=None, alpha=0.35)
loaded = tf.saved_model.load(sm)
saved = {v.name.split(":")[0]: v for v in loaded.signatures["serving_default"].variables}
for v in m.weights:
    v.assign(saved[v.path])
for layer in m.layers:
    layer.trainable = layer.name in tuned
    if isinstance(layer, tf.keras.layers.BatchNormalization):
        layer.momentum = momentum
x = np.load(xf)
# Keras MobileNetV2's input: RGB in [-1, 1].
x = tf.constant(x[..., ::-1] * 2.0 - 1.0, tf.float32)
y, w, b = np.load(yf), np.load(wf), np.load(bf)


def save(sub, name, value):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
    np.save(os.path.join(out, sub, name.replace("/", "__") + ".npy"), np.asarray(value, np.float32))


flips = 0
calls = {}
for f in os.listdir(relus):
    name = f[:-len(".npy")]
    layer = m.get_layer(name if name in [l.name for l in m.layers] else name.rsplit("_", 1)[0])
    pre = np.load(os.path.join(relus, f))
    inside = tf.constant(((pre > 0) & (pre < 6)).astype(np.float32))
    top = tf.constant((pre >= 6).astype(np.float32))

    def call(v, inside=inside, top=top, layer=layer):
        global flips
        flips += int(tf.reduce_sum(tf.cast(tf.not_equal(tf.cast((v > 0) & (v < 6), tf.float32), inside), tf.int32)))
        return v * inside + 6.0 * top

    calls[layer] = layer.call
    layer.call = call
tv = m.trainable_variables
with tf.GradientTape() as tape:
    f = m(x, training=True)
    logits = tf.matmul(f, w) + b
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=logits))
for layer, c in calls.items():
    layer.call = c
os.makedirs(out, exist_ok=True)
np.save(os.path.join(out, "relu_flips.npy"), np.array([flips], np.float32))
for v, g in zip(tv, tape.gradient(cost, tv)):
    save("grads", v.path, g)
for layer in m.layers:
    if layer.name in tuned and isinstance(layer, tf.keras.layers.BatchNormalization):
        save("moving", layer.moving_mean.path, layer.moving_mean)
        save("moving", layer.moving_variance.path, layer.moving_variance)
for v in m.weights:
    v.assign(np.load(os.path.join(after, v.path.replace("/", "__") + ".npy")).reshape(v.shape))
np.save(os.path.join(out, "predict.npy"), m(x, training=False).numpy())
np.save(os.path.join(out, "train.npy"), m(x, training=True).numpy())
