"""What the tutorial's graph leaves on the table, measured: the training step of the
tutorial's network as written (conv2d, `+= bias`, max_pool, relu) against the same
network with its bias added by tf.nn.bias_add (one op that the runtime fuses into the
convolution, with BiasAddGrad for its gradient instead of Sum over three axes), and
with ReLU before the pooling as well (max and ReLU commute: the same numbers, and
conv + bias + ReLU fuse into one oneDNN kernel). Same TensorFlow, same process, the
variants run alternately; random batches of 32 at 128x128x3.

usage: graphvariants.py [ROUNDS]   prints JSON lines: variant, median s/step
"""
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf1 = tf.compat.v1
tf1.disable_v2_behavior()


def build(variant, size=128, classes=2):
    g = tf1.Graph()
    with g.as_default():
        tf1.set_random_seed(2)
        x = tf1.placeholder(tf1.float32, [None, size, size, 3])
        y = tf1.placeholder(tf1.float32, [None, classes])
        layer, cin = x, 3
        for f in (32, 32, 64):
            w = tf1.Variable(tf1.truncated_normal([3, 3, cin, f], stddev=0.05))
            b = tf1.Variable(tf1.constant(0.05, shape=[f]))
            layer = tf1.nn.conv2d(layer, w, [1, 1, 1, 1], "SAME")
            layer = layer + b if variant == "tutorial" else tf1.nn.bias_add(layer, b)
            if variant == "bias_add+relu_first":
                layer = tf1.nn.relu(layer)
            layer = tf1.nn.max_pool(layer, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
            if variant != "bias_add+relu_first":
                layer = tf1.nn.relu(layer)
            cin = f
        n = layer.get_shape()[1:4].num_elements()
        layer = tf1.reshape(layer, [-1, n])
        w1 = tf1.Variable(tf1.truncated_normal([n, 128], stddev=0.05))
        layer = tf1.nn.relu(tf1.matmul(layer, w1) + tf1.Variable(tf1.constant(0.05, shape=[128])))
        w2 = tf1.Variable(tf1.truncated_normal([128, classes], stddev=0.05))
        logits = tf1.matmul(layer, w2) + tf1.Variable(tf1.constant(0.05, shape=[classes]))
        cost = tf1.reduce_mean(tf1.nn.softmax_cross_entropy_with_logits(logits=logits, labels=y))
        train = tf1.train.AdamOptimizer(1e-4).minimize(cost)
        init = tf1.global_variables_initializer()
    s = tf1.Session(graph=g)
    s.run(init)
    return s, x, y, train


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rng = np.random.RandomState(0)
    feed_x = rng.rand(32, 128, 128, 3).astype(np.float32)
    feed_y = np.eye(2, dtype=np.float32)[rng.randint(0, 2, 32)]
    variants = ["tutorial", "bias_add", "bias_add+relu_first"]
    nets = {v: build(v) for v in variants}
    times = {v: [] for v in variants}
    for v, (s, x, y, train) in nets.items():
        for _ in range(3):
            s.run(train, {x: feed_x, y: feed_y})
    for _ in range(rounds):
        for v, (s, x, y, train) in nets.items():
            t = time.perf_counter()
            for _ in range(5):
                s.run(train, {x: feed_x, y: feed_y})
            times[v].append((time.perf_counter() - t) / 5)
    base = statistics.median(times["tutorial"])
    for v in variants:
        m = statistics.median(times[v])
        print(json.dumps({"variant": v, "s_per_step": round(m, 4), "vs_tutorial": round(m / base, 3)}))


if __name__ == "__main__":
    main()
