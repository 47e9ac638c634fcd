"""Writes the SavedModels the transfer-learning tests read, into argv[1]:
mnv2 (Keras MobileNetV2, random weights), writefile (features that also
write a file), nograd (a variable read through IdentityN, an op TensorFlow's C
API has no gradient for: tf.custom_gradient makes one), and backbones that are wrong in one way each."""
import os
import sys

import tensorflow as tf

out = sys.argv[1]
tf.keras.utils.set_random_seed(1)
m = tf.keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, pooling="avg",
                                      weights=None, alpha=0.35)
# Random weights shrink the activations to ~1e-11 through 50 layers; set
# the batch-norm statistics from one batch, as training would, so that the
# features are of order one and tell images apart.
for layer in m.layers:
    if isinstance(layer, tf.keras.layers.BatchNormalization):
        layer.momentum = 0.0
m(tf.random.uniform([32, 96, 96, 3], -1.0, 1.0, seed=1), training=True)
tf.saved_model.save(m, os.path.join(out, "mnv2"))


class Fn(tf.Module):
    """A one-function module whose serving signature is fn."""

    def __init__(self, spec, fn):
        super().__init__()
        self.w = tf.Variable(tf.ones([3]))
        self.f = tf.function(fn, input_signature=[spec])


def save(name, spec, fn, signature=True):
    mod = Fn(spec, fn)
    sigs = {"serving_default": mod.f.get_concrete_function()} if signature else {}
    tf.saved_model.save(mod, os.path.join(out, name), signatures=sigs)


img = tf.TensorSpec([None, 32, 32, 3], tf.float32)


def writes(x):
    with tf.control_dependencies([tf.io.write_file("/tmp/tfcat-backbone-wrote", "x")]):
        return {"features": tf.reduce_mean(x, axis=[1, 2])}


save("writefile", img, writes)
save("rank3", tf.TensorSpec([None, 32, 32], tf.float32), lambda x: {"f": tf.reduce_mean(x, axis=[1])})
save("int", tf.TensorSpec([None, 32, 32, 3], tf.int32), lambda x: {"f": tf.reduce_mean(tf.cast(x, tf.float32), axis=[1, 2])})
save("channels2", tf.TensorSpec([None, 32, 32, 2], tf.float32), lambda x: {"f": tf.reduce_mean(x, axis=[1, 2])})
save("rank4out", img, lambda x: {"f": x * 2.0})
save("nosig", img, lambda x: {"f": tf.reduce_mean(x, axis=[1, 2])}, signature=False)
save("two", img, lambda x: {"a": tf.reduce_mean(x, axis=[1, 2]), "b": tf.reduce_max(x, axis=[1, 2])})
save("novars", img, lambda x: {"f": tf.reduce_mean(x, axis=[1, 2])})  # valid, nothing to fine-tune
save("anysize", tf.TensorSpec([None, None, None, 3], tf.float32), lambda x: {"f": tf.reduce_mean(x, axis=[1, 2])})


class NoGrad(tf.Module):
    """Features mean(w * x) through IdentityN."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(tf.ones([3]))

    @tf.function(input_signature=[img])
    def f(self, x):
        return {"features": tf.reduce_mean(tf.raw_ops.IdentityN(input=[x * self.w])[0], axis=[1, 2])}


ng = NoGrad()
tf.saved_model.save(ng, os.path.join(out, "nograd"), signatures={"serving_default": ng.f.get_concrete_function()})
