"""The tutorial's graph in Python TensorFlow, written against tf.compat.v1 with v2
behaviour off, as the TF1 tutorial runs on TF 2.x (reference variables).

Reference for tfcat's tests only; tfcat never runs Python. Commands:

  steps OUT [--steps N] [--batch B] [--size S]
      builds the tutorial's graph, writes every variable's initial value, N fixed
      batches, the loss of each Adam step and every variable after the last step
      (all .npy, names with '/' as '~'). Single-threaded.
  save OUT --data DIR [--steps N]
      trains N steps on the batches in DIR (written by steps) and saves a
      checkpoint with Saver().save(sess, OUT/dogs-cats-model), as train.py does;
      writes the probabilities for DIR/x_19.npy (probe_pred.npy) and the loss of
      one more step on batch N (next_loss.npy).
  predict META_DIR X.npy OUT.npy
      predict.py's way: import_meta_graph, restore latest_checkpoint, feed x:0
      and a zero y_true:0, fetch y_pred:0.
  keys PREFIX
      prints name, dtype and shape of every tensor in the checkpoint, one a line.
"""
import os
import sys
import argparse

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
tf1.disable_v2_behavior()


def build(size=128, channels=3, classes=2, seed=2):
    """The tutorial's network, layer for layer (train.py)."""
    tf1.set_random_seed(seed)
    x = tf1.placeholder(tf1.float32, shape=[None, size, size, channels], name="x")
    y_true = tf1.placeholder(tf1.float32, shape=[None, classes], name="y_true")
    y_true_cls = tf1.argmax(y_true, axis=1)

    def weights(shape):
        return tf1.Variable(tf1.truncated_normal(shape, stddev=0.05))

    def biases(n):
        return tf1.Variable(tf1.constant(0.05, shape=[n]))

    layer = x
    cin = channels
    for filters in (32, 32, 64):  # conv2d, += bias, max_pool, relu
        w = weights([3, 3, cin, filters])
        b = biases(filters)
        layer = tf1.nn.conv2d(input=layer, filter=w, strides=[1, 1, 1, 1], padding="SAME")
        layer += b
        layer = tf1.nn.max_pool(value=layer, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")
        layer = tf1.nn.relu(layer)
        cin = filters
    flat_size = layer.get_shape()[1:4].num_elements()
    layer = tf1.reshape(layer, [-1, flat_size])
    w = weights([flat_size, 128])
    b = biases(128)
    layer = tf1.nn.relu(tf1.matmul(layer, w) + b)
    w = weights([128, classes])
    b = biases(classes)
    logits = tf1.matmul(layer, w) + b
    y_pred = tf1.nn.softmax(logits, name="y_pred")
    y_pred_cls = tf1.argmax(y_pred, axis=1)
    xent = tf1.nn.softmax_cross_entropy_with_logits(logits=logits, labels=y_true)
    cost = tf1.reduce_mean(xent)
    optimizer = tf1.train.AdamOptimizer(learning_rate=1e-4).minimize(cost)
    accuracy = tf1.reduce_mean(tf1.cast(tf1.equal(y_pred_cls, y_true_cls), tf1.float32))
    return x, y_true, y_pred, cost, optimizer, accuracy


def fname(var_name):
    return var_name.replace("/", "~") + ".npy"


def session():
    cfg = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    return tf1.Session(config=cfg)


def cmd_steps(a):
    os.makedirs(a.out, exist_ok=True)
    x, y_true, y_pred, cost, opt, _ = build(size=a.size)
    gvars = tf1.global_variables()
    rng = np.random.default_rng(1)
    with session() as s:
        s.run(tf1.global_variables_initializer())
        for v, val in zip(gvars, s.run(gvars)):
            np.save(os.path.join(a.out, "init_" + fname(v.op.name)), val)
        losses = []
        for i in range(a.steps):
            xb = rng.random((a.batch, a.size, a.size, 3), dtype=np.float32)
            cls = rng.integers(0, 2, a.batch)
            # Make the classes separable, so training moves the weights.
            xb[cls == 1, : a.size // 2] *= 0.5
            yb = np.eye(2, dtype=np.float32)[cls]
            np.save(os.path.join(a.out, "x_%02d.npy" % i), xb)
            np.save(os.path.join(a.out, "y_%02d.npy" % i), yb)
            loss, _ = s.run([cost, opt], feed_dict={x: xb, y_true: yb})
            losses.append(loss)
            if i == 0:
                for v, val in zip(gvars, s.run(gvars)):
                    np.save(os.path.join(a.out, "step1_" + fname(v.op.name)), val)
        np.save(os.path.join(a.out, "losses.npy"), np.array(losses, dtype=np.float32))
        for v, val in zip(gvars, s.run(gvars)):
            np.save(os.path.join(a.out, "final_" + fname(v.op.name)), val)
        names = [v.op.name for v in gvars]
    with open(os.path.join(a.out, "variables.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


def cmd_save(a):
    x, y_true, y_pred, cost, opt, _ = build()
    saver = tf1.train.Saver()
    with session() as s:
        s.run(tf1.global_variables_initializer())
        for i in range(a.steps):
            xb = np.load(os.path.join(a.data, "x_%02d.npy" % i))
            yb = np.load(os.path.join(a.data, "y_%02d.npy" % i))
            s.run(opt, feed_dict={x: xb, y_true: yb})
        os.makedirs(a.out, exist_ok=True)
        saver.save(s, os.path.join(a.out, "dogs-cats-model"))
        probe = np.load(os.path.join(a.data, "x_19.npy"))
        np.save(os.path.join(a.out, "probe_pred.npy"), s.run(y_pred, feed_dict={x: probe}))
        xb = np.load(os.path.join(a.data, "x_%02d.npy" % a.steps))
        yb = np.load(os.path.join(a.data, "y_%02d.npy" % a.steps))
        loss, _ = s.run([cost, opt], feed_dict={x: xb, y_true: yb})
        np.save(os.path.join(a.out, "next_loss.npy"), np.array([loss], dtype=np.float32))


def cmd_predict(a):
    with session() as s:
        saver = tf1.train.import_meta_graph(os.path.join(a.meta_dir, "dogs-cats-model.meta"))
        saver.restore(s, tf1.train.latest_checkpoint(a.meta_dir))
        g = tf1.get_default_graph()
        x = g.get_tensor_by_name("x:0")
        y_true = g.get_tensor_by_name("y_true:0")
        y_pred = g.get_tensor_by_name("y_pred:0")
        images = np.load(a.x)
        zeros = np.zeros((images.shape[0], y_true.shape[1]), dtype=np.float32)
        np.save(a.output, s.run(y_pred, feed_dict={x: images, y_true: zeros}))


def cmd_keys(a):
    r = tf1.train.load_checkpoint(a.prefix)
    shapes = r.get_variable_to_shape_map()
    dtypes = r.get_variable_to_dtype_map()
    for k in sorted(shapes):
        print(k, dtypes[k].name, list(shapes[k]))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("steps")
    s.add_argument("out")
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--batch", type=int, default=8)
    s.add_argument("--size", type=int, default=128)
    s = sub.add_parser("save")
    s.add_argument("out")
    s.add_argument("--data", required=True)
    s.add_argument("--steps", type=int, default=5)
    s = sub.add_parser("predict")
    s.add_argument("meta_dir")
    s.add_argument("x")
    s.add_argument("output")
    s = sub.add_parser("keys")
    s.add_argument("prefix")
    a = p.parse_args()
    {"steps": cmd_steps, "save": cmd_save, "predict": cmd_predict, "keys": cmd_keys}[a.cmd](a)


if __name__ == "__main__":
    main()
