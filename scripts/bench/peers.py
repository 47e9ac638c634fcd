"""What a user would pick instead of tfcat, on the tutorial's network, for the benchmark
(scripts/bench/run.py): Keras 3 on TensorFlow's backend, and plain JAX with optax.

  keras-train DATA MODEL STEPS [jit|bf16]
                                       model.fit over a tf.data pipeline (decode, resize,
                                       cache, shuffle, batch, prefetch); jit: jit_compile=True;
                                       bf16: the mixed_bfloat16 policy (variables float32,
                                       the output layer, so logits and loss, float32, as
                                       Keras' mixed-precision guide says)
  keras-predict MODEL IMAGE|DIR        load the .keras file, predict (a folder in batches of 32)
  jax-train DATA MODEL STEPS           jitted train step, optax Adam, batches from NumPy
  jax-predict MODEL IMAGE|DIR          jitted forward pass (a folder in batches of 32)

The network is the tutorial's: three 3x3 convolutions (32, 32, 64 filters, SAME, bias),
each followed by 2x2 max pooling (SAME) and ReLU, flatten, fc 128 + ReLU, fc to the
classes, softmax cross-entropy, Adam 1e-4, batches of 32, 128x128x3 images scaled to
[0, 1]. 20% of the images (shuffled once) validate after every epoch, all of them,
as tfcat does; the model is saved after every epoch and at the end.

Each prints JSON lines with timestamps (seconds since the process started):
{"event": "step", "step": N, "t": ...} every 10 steps, and a last "done" line.
"""
import glob
import json
import os
import sys
import time

T0 = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SIZE, BATCH, LR, VALID = 128, 32, 1e-4, 0.2


def emit(**kw):
    kw["t"] = time.perf_counter() - T0
    print(json.dumps(kw), flush=True)


def files_and_labels(data_dir):
    import numpy as np
    classes = sorted(d for d in os.listdir(data_dir) if os.path.isdir(os.path.join(data_dir, d)))
    files, labels = [], []
    for i, c in enumerate(classes):
        for f in sorted(glob.glob(os.path.join(data_dir, c, "*g"))):
            files.append(f)
            labels.append(i)
    perm = np.random.RandomState(1).permutation(len(files))
    files, labels = [files[i] for i in perm], np.array(labels)[perm]
    nv = int(VALID * len(files))
    return classes, (files[nv:], labels[nv:]), (files[:nv], labels[:nv])


def image_files(path):
    if os.path.isdir(path):
        return sorted(glob.glob(os.path.join(path, "**", "*g"), recursive=True))
    return [path]


# ---------------------------------------------------------------- Keras


def keras_model(classes, bf16=False):
    import keras
    from keras import layers
    x = inp = keras.Input((SIZE, SIZE, 3))
    for f in (32, 32, 64):
        x = layers.Conv2D(f, 3, padding="same")(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
        x = layers.ReLU()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    # Under mixed_bfloat16 the logits stay float32: softmax and cross-entropy in bfloat16 lose too much.
    return keras.Model(inp, layers.Dense(classes, dtype="float32" if bf16 else None)(x))


def keras_dataset(files, labels, classes, train):
    import tensorflow as tf

    def load(f, y):
        img = tf.image.decode_jpeg(tf.io.read_file(f), channels=3)
        img = tf.image.resize(img, (SIZE, SIZE)) / 255.0
        return img, tf.one_hot(y, classes)

    ds = tf.data.Dataset.from_tensor_slices((files, labels)).map(load, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if train:
        ds = ds.shuffle(len(files), seed=1).repeat()
    return ds.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def keras_train(data_dir, model_dir, steps, jit, bf16=False):
    import keras
    import tensorflow as tf
    if bf16:
        # Before the model: layers take the global policy when they are built.
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    classes, (tf_, tl), (vf, vl) = files_and_labels(data_dir)
    train = keras_dataset(tf_, tl, len(classes), True)
    valid = keras_dataset(vf, vl, len(classes), False)
    model = keras_model(len(classes), bf16)
    model.compile(optimizer=keras.optimizers.Adam(LR), loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=jit)
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, "model.keras")
    per_epoch = len(tf_) // BATCH
    done = [0]

    class Steps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            done[0] += 1
            if done[0] % 10 == 0:
                emit(event="step", step=done[0])

    emit(event="loaded", tensorflow=tf.__version__, keras=keras.__version__)
    model.fit(train, steps_per_epoch=per_epoch, epochs=-(-steps // per_epoch), validation_data=valid, verbose=0,
              callbacks=[Steps(), keras.callbacks.ModelCheckpoint(path)])
    model.save(path)
    emit(event="done", step=done[0])


def keras_predict(model_dir, path):
    import keras
    import numpy as np
    import tensorflow as tf
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    files = image_files(path)
    ds = keras_dataset(files, np.zeros(len(files), np.int64), 2, False).map(lambda x, y: x)
    start = time.perf_counter()
    p = tf.nn.softmax(model.predict(ds, verbose=0)).numpy()
    emit(event="done", images=len(files), seconds=time.perf_counter() - start, first=p[0].tolist())


# ---------------------------------------------------------------- JAX


def load_arrays(files):
    import cv2
    import numpy as np
    out = np.empty((len(files), SIZE, SIZE, 3), np.float32)
    for i, f in enumerate(files):
        img = cv2.resize(cv2.imread(f), (SIZE, SIZE), 0, 0, cv2.INTER_LINEAR)
        out[i] = img.astype(np.float32) / 255.0
    return out


def jax_init(classes, seed=2):
    import jax
    import jax.numpy as jnp
    keys = jax.random.split(jax.random.PRNGKey(seed), 5)
    params, c = [], 3
    for k, f in zip(keys[:3], (32, 32, 64)):
        params.append((0.05 * jax.random.truncated_normal(k, -2, 2, (3, 3, c, f)), jnp.full((f,), 0.05)))
        c = f
    flat = (SIZE // 8) ** 2 * 64
    params.append((0.05 * jax.random.truncated_normal(keys[3], -2, 2, (flat, 128)), jnp.full((128,), 0.05)))
    params.append((0.05 * jax.random.truncated_normal(keys[4], -2, 2, (128, classes)), jnp.full((classes,), 0.05)))
    return params


def jax_forward(params, x):
    import jax
    import jax.numpy as jnp
    for w, b in params[:3]:
        x = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
        x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "SAME")
        x = jax.nn.relu(x)
    x = x.reshape(x.shape[0], -1)
    x = jax.nn.relu(x @ params[3][0] + params[3][1])
    return x @ params[4][0] + params[4][1]


def jax_train(data_dir, model_dir, steps):
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    classes, (tf_, tl), (vf, vl) = files_and_labels(data_dir)
    tx, vx = load_arrays(tf_), load_arrays(vf)
    ty, vy = np.eye(len(classes), dtype=np.float32)[tl], np.eye(len(classes), dtype=np.float32)[vl]
    emit(event="loaded", jax=jax.__version__, optax=optax.__version__)
    params = jax_init(len(classes))
    opt = optax.adam(LR)
    state = opt.init(params)

    def loss_fn(p, x, y):
        return optax.softmax_cross_entropy(jax_forward(p, x), y).mean()

    @jax.jit
    def step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    @jax.jit
    def evaluate(p, x, y):
        logits = jax_forward(p, x)
        return optax.softmax_cross_entropy(logits, y).mean(), (logits.argmax(1) == y.argmax(1)).mean()

    os.makedirs(model_dir, exist_ok=True)

    def save():
        np.savez(os.path.join(model_dir, "params.npz"), *[np.asarray(a) for wb in params for a in wb])

    per_epoch, nvb = len(tx) // BATCH, len(vx) // BATCH
    rng = np.random.RandomState(1)
    order = rng.permutation(len(tx))
    for i in range(steps):
        j = i % per_epoch
        if j == 0 and i > 0:
            order = rng.permutation(len(tx))
        idx = order[j * BATCH:(j + 1) * BATCH]
        params, state, loss = step(params, state, tx[idx], ty[idx])
        if (i + 1) % per_epoch == 0 or i + 1 == steps:
            vals = [evaluate(params, vx[k * BATCH:(k + 1) * BATCH], vy[k * BATCH:(k + 1) * BATCH]) for k in range(nvb)]
            emit(event="epoch", step=i + 1, val_loss=float(np.mean([float(v[0]) for v in vals])))
            save()
        if (i + 1) % 10 == 0:
            loss.block_until_ready()
            emit(event="step", step=i + 1)
    emit(event="done", step=steps)


def jax_predict(model_dir, path):
    import jax
    import numpy as np
    z = np.load(os.path.join(model_dir, "params.npz"))
    a = [z["arr_%d" % i] for i in range(len(z.files))]
    params = [(a[2 * i], a[2 * i + 1]) for i in range(len(a) // 2)]
    fwd = jax.jit(lambda p, x: jax.nn.softmax(jax_forward(p, x)))
    files = image_files(path)
    fwd(params, np.zeros((BATCH, SIZE, SIZE, 3), np.float32)).block_until_ready()  # compile
    start = time.perf_counter()
    first = None
    for k in range(0, len(files), BATCH):
        x = load_arrays(files[k:k + BATCH])
        n = len(x)
        x = np.concatenate([x, np.zeros((BATCH - n, SIZE, SIZE, 3), np.float32)]) if n < BATCH else x
        p = np.asarray(fwd(params, x))[:n]
        first = p[0] if first is None else first
    emit(event="done", images=len(files), seconds=time.perf_counter() - start, first=first.tolist())


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "keras-train":
        mode = args[3] if len(args) > 3 else ""
        if mode not in ("", "jit", "bf16"):
            sys.exit("keras-train: unknown mode " + mode)
        keras_train(args[0], args[1], int(args[2]), mode == "jit", mode == "bf16")
    elif cmd == "keras-predict":
        keras_predict(args[0], args[1])
    elif cmd == "jax-train":
        jax_train(args[0], args[1], int(args[2]))
    elif cmd == "jax-predict":
        jax_predict(args[0], args[1])
    else:
        sys.exit("unknown command " + cmd)
