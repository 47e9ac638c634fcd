"""Python TensorFlow's view of tfcat's SavedModels; reference for tests only.

Commands:

  load DIR X.npy OUT_PREFIX
      loads DIR twice, with TF2's tf.saved_model.load (the TF1 path for a
      SavedModel without an object graph) and with TF1's
      tf.compat.v1.saved_model.loader.load, runs the serving_default signature
      on X.npy with each and writes OUT_PREFIX{v2,v1}_{probabilities,classes}.npy.
      Prints one JSON line: the class names read through the asset, the
      signature's keys and the tensors the v1 signature names.
  checkpoint OUT --size S --channels C --classes K X.npy
      builds a tutorial-style graph in tf.compat.v1 (reference variables
      Variable, Variable_1, ..., x, y_pred), initialises it with seed 3, saves
      OUT/dogs-cats-model with Saver, as the tutorial's train.py does, and
      writes y_pred for X.npy to OUT/probe_pred.npy.
"""
import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf


def cmd_load(a):
    x = np.load(a.x)
    report = {}

    # TF2: tf.saved_model.load -> signatures['serving_default'](images=...)
    loaded = tf.saved_model.load(a.dir)
    fn = loaded.signatures["serving_default"]
    out = fn(images=tf.constant(x))
    np.save(a.out + "v2_probabilities.npy", out["probabilities"].numpy())
    np.save(a.out + "v2_classes.npy", out["classes"].numpy())
    report["v2_outputs"] = sorted(out.keys())
    report["v2_inputs"] = sorted(fn.structured_input_signature[1].keys())
    names = []
    for asset in loaded.asset_paths:
        path = asset.asset_path.numpy().decode()
        if os.path.basename(path) == "classes.txt":
            with open(path) as f:
                names = f.read().splitlines()
    report["classes"] = names
    report["v2_variables"] = sorted(v.name for v in loaded.variables)

    # TF1: loader.load into a session, tensors found through the SignatureDef.
    tf1 = tf.compat.v1
    with tf.Graph().as_default() as g:
        with tf1.Session(graph=g) as sess:
            meta = tf1.saved_model.loader.load(sess, ["serve"], a.dir)
            sig = meta.signature_def["serving_default"]
            feed = {sig.inputs["images"].name: x}
            probs, classes = sess.run(
                [sig.outputs["probabilities"].name, sig.outputs["classes"].name], feed_dict=feed)
            np.save(a.out + "v1_probabilities.npy", probs)
            np.save(a.out + "v1_classes.npy", classes)
            report["v1_tensors"] = {
                "images": sig.inputs["images"].name,
                "probabilities": sig.outputs["probabilities"].name,
                "classes": sig.outputs["classes"].name,
            }
            report["v1_method"] = sig.method_name
            report["v1_assets"] = [f.filename for f in meta.asset_file_def]
    print(json.dumps(report))


def cmd_checkpoint(a):
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        tf1.set_random_seed(3)
        x = tf1.placeholder(tf.float32, [None, a.size, a.size, a.channels], name="x")
        y_true = tf1.placeholder(tf.float32, [None, a.classes], name="y_true")
        layer, cin = x, a.channels
        for filters in (32, 32, 64):
            w = tf1.Variable(tf1.truncated_normal([3, 3, cin, filters], stddev=0.05))
            b = tf1.Variable(tf1.constant(0.05, shape=[filters]))
            layer = tf1.nn.conv2d(layer, w, strides=[1, 1, 1, 1], padding="SAME") + b
            layer = tf1.nn.max_pool(layer, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
            layer = tf1.nn.relu(layer)
            cin = filters
        flat = layer.get_shape()[1:4].num_elements()
        layer = tf1.reshape(layer, [-1, flat])
        w = tf1.Variable(tf1.truncated_normal([flat, 128], stddev=0.05))
        b = tf1.Variable(tf1.constant(0.05, shape=[128]))
        layer = tf1.nn.relu(tf1.matmul(layer, w) + b)
        w = tf1.Variable(tf1.truncated_normal([128, a.classes], stddev=0.05))
        b = tf1.Variable(tf1.constant(0.05, shape=[a.classes]))
        logits = tf1.matmul(layer, w) + b
        y_pred = tf1.nn.softmax(logits, name="y_pred")
        cost = tf1.reduce_mean(tf1.nn.softmax_cross_entropy_with_logits(logits=logits, labels=y_true))
        tf1.train.AdamOptimizer(1e-4).minimize(cost)
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            os.makedirs(a.out, exist_ok=True)
            saver.save(sess, os.path.join(a.out, "dogs-cats-model"))
            np.save(os.path.join(a.out, "probe_pred.npy"), sess.run(y_pred, {x: np.load(a.x)}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("load")
    s.add_argument("dir")
    s.add_argument("x")
    s.add_argument("out")
    s = sub.add_parser("checkpoint")
    s.add_argument("out")
    s.add_argument("x")
    s.add_argument("--size", type=int, required=True)
    s.add_argument("--channels", type=int, required=True)
    s.add_argument("--classes", type=int, required=True)
    a = p.parse_args()
    {"load": cmd_load, "checkpoint": cmd_checkpoint}[a.cmd](a)


if __name__ == "__main__":
    main()
