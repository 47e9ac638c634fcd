"""The Python side of tfcat's benchmark: the tutorial's train.py and predict.py,
as they run on TF 2.x through tf.compat.v1 (graph from tfsession/testdata/tutorial.py).

  train DATA_DIR MODEL_DIR ITERATIONS   load with cv2, train with feed_dict, save
  predict MODEL_DIR IMAGE               predict.py: import_meta_graph, restore, run
  predict-loop MODEL_DIR DIR            predict.py's way for every image, one process
  preprocess DIR                        cv2.imread + cv2.resize + /255 per image
  matmul N                              GFLOP/s of an N×N float32 MatMul (practical peak)

--bf16 (train, predict, predict-loop) switches on Grappler's oneDNN bfloat16 rewrite
(auto_mixed_precision_onednn_bfloat16) in the Session's ConfigProto, as tfcat's
--precision bf16 does; variables and checkpoints stay float32. Without it the Session
is the tutorial's, TensorFlow's defaults.

Each prints JSON lines with timestamps (seconds since the process started).
"""
import glob
import json
import os
import sys
import time

T0 = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def emit(**kw):
    kw["t"] = time.perf_counter() - T0
    print(json.dumps(kw), flush=True)


def load_image(path, size=128):
    import cv2
    import numpy as np
    img = cv2.imread(path)
    img = cv2.resize(img, (size, size), 0, 0, cv2.INTER_LINEAR)
    return np.multiply(img.astype(np.float32), 1.0 / 255.0)


def session_config(bf16):
    """None (the tutorial's Session, TensorFlow's defaults) or a ConfigProto with
    the rewrite tfcat's --precision bf16 sets."""
    if not bf16:
        return None
    import tensorflow as tf
    from tensorflow.core.protobuf import rewriter_config_pb2
    cfg = tf.compat.v1.ConfigProto()
    cfg.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewriter_config_pb2.RewriterConfig.ON
    return cfg


def train(data_dir, model_dir, iterations, bf16=False):
    import numpy as np
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tfsession", "testdata"))
    import tutorial as T
    tf1 = T.tf1
    # dataset.py: every image in memory as float32, shuffled, 20% validation.
    classes = sorted(os.listdir(data_dir))
    images, labels = [], []
    for i, c in enumerate(classes):
        for f in sorted(glob.glob(os.path.join(data_dir, c, "*g"))):
            images.append(load_image(f))
            labels.append(np.eye(len(classes), dtype=np.float32)[i])
    images, labels = np.array(images), np.array(labels)
    perm = np.random.RandomState(1).permutation(len(images))
    images, labels = images[perm], labels[perm]
    nv = int(0.2 * len(images))
    train_x, train_y, valid_x, valid_y = images[nv:], labels[nv:], images[:nv], labels[:nv]
    emit(event="loaded", images=len(images))

    class Split:
        def __init__(self, x, y):
            self.x, self.y, self.i = x, y, 0

        def next_batch(self, n):
            if self.i + n > len(self.x):
                self.i = 0
            s = self.i
            self.i += n
            return self.x[s:self.i], self.y[s:self.i]

    tr, va = Split(train_x, train_y), Split(valid_x, valid_y)
    x, y_true, y_pred, cost, optimizer, accuracy = T.build(classes=len(classes))
    saver = tf1.train.Saver()
    batch = 32
    per_epoch = len(train_x) // batch
    with tf1.Session(config=session_config(bf16)) as s:
        s.run(tf1.global_variables_initializer())
        for i in range(iterations):
            xb, yb = tr.next_batch(batch)
            xv, yv = va.next_batch(batch)
            s.run(optimizer, feed_dict={x: xb, y_true: yb})
            if i % per_epoch == 0:
                val_loss = s.run(cost, feed_dict={x: xv, y_true: yv})
                acc = s.run(accuracy, feed_dict={x: xb, y_true: yb})
                val_acc = s.run(accuracy, feed_dict={x: xv, y_true: yv})
                emit(event="epoch", step=i + 1, acc=float(acc), val_acc=float(val_acc), val_loss=float(val_loss))
                saver.save(s, os.path.join(model_dir, "dogs-cats-model"))
            if (i + 1) % 10 == 0:
                emit(event="step", step=i + 1)
        saver.save(s, os.path.join(model_dir, "dogs-cats-model"))
    emit(event="done", step=iterations)


def restore(model_dir, bf16=False):
    import tensorflow as tf
    tf1 = tf.compat.v1
    tf1.disable_v2_behavior()
    s = tf1.Session(config=session_config(bf16))
    saver = tf1.train.import_meta_graph(os.path.join(model_dir, "dogs-cats-model.meta"))
    saver.restore(s, tf1.train.latest_checkpoint(model_dir))
    g = tf1.get_default_graph()
    return s, g.get_tensor_by_name("x:0"), g.get_tensor_by_name("y_true:0"), g.get_tensor_by_name("y_pred:0")


def predict(model_dir, image, bf16=False):
    import numpy as np
    x_batch = load_image(image).reshape(1, 128, 128, 3)
    s, x, y_true, y_pred = restore(model_dir, bf16)
    result = s.run(y_pred, feed_dict={x: x_batch, y_true: np.zeros((1, y_true.shape[1]))})
    print(result)
    emit(event="done")


def predict_loop(model_dir, folder, bf16=False):
    import numpy as np
    s, x, y_true, y_pred = restore(model_dir, bf16)
    files = sorted(glob.glob(os.path.join(folder, "**", "*g"), recursive=True))
    zeros = np.zeros((1, y_true.shape[1]))
    start = time.perf_counter()
    for f in files:
        s.run(y_pred, feed_dict={x: load_image(f).reshape(1, 128, 128, 3), y_true: zeros})
    emit(event="done", images=len(files), seconds=time.perf_counter() - start)


def preprocess(folder):
    files = sorted(glob.glob(os.path.join(folder, "**", "*g"), recursive=True))
    start = time.perf_counter()
    for f in files:
        load_image(f)
    emit(event="done", images=len(files), seconds=time.perf_counter() - start)


def matmul(n):
    import numpy as np
    import tensorflow as tf
    tf1 = tf.compat.v1
    tf1.disable_v2_behavior()
    # Placeholders, so Grappler cannot fold the products into constants.
    a = tf1.placeholder(tf1.float32, [n, n])
    b = tf1.placeholder(tf1.float32, [n, n])
    c = a
    for _ in range(4):
        c = tf1.matmul(c, b) * (1.0 / n)
    feed = {a: np.random.RandomState(0).rand(n, n).astype(np.float32),
            b: np.random.RandomState(1).rand(n, n).astype(np.float32)}
    with tf1.Session() as s:
        s.run(c, feed_dict=feed)
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            s.run(c, feed_dict=feed)
            best = min(best, time.perf_counter() - t)
    emit(event="done", gflops=4 * 2 * n ** 3 / best / 1e9)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    bf16 = "--bf16" in args
    args = [x for x in args if x != "--bf16"]
    if cmd == "train":
        train(args[0], args[1], int(args[2]), bf16)
    elif cmd == "predict":
        predict(args[0], args[1], bf16)
    elif cmd == "predict-loop":
        predict_loop(args[0], args[1], bf16)
    elif cmd == "preprocess":
        preprocess(args[0])
    elif cmd == "matmul":
        matmul(int(args[0]))
    else:
        sys.exit("unknown command " + cmd)
