"""tfcat against the Python tutorial, side by side in one run on one machine.

Prepares a two-class folder of 128x128 BGR JPEGs (Fashion-MNIST T-shirt/top and
Trouser, upscaled with cv2 and coloured with a colour map), then runs each
measurement for tfcat and for Python alternately, --repeats times, and prints
the medians and the ratios tfcat / Python:

  a  training step time at steady state (batch 32)
  b  end-to-end training: process start, data loaded, N iterations, checkpoint saved
  c  peak RSS of that training run
  d  one-image predict, process start to printed result
  e  folder predict throughput (1,000 images)
  f  decode + resize throughput
  g  training GFLOP/s against the practical peak (a large MatMul, same runtime)

tfcat runs with --onednn (TensorFlow's oneDNN CPU kernels, which TensorFlow
leaves off on CPUs without AVX-512) except for d, where one image gains nothing
from it; rows a0 and e0 give tfcat with TensorFlow's default kernels, the
kernels the Python side uses.

usage: run.py --tfcat BIN [--work DIR] [--repeats 3] [--iterations 40] [--markdown]
"""
import argparse
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TUTORIAL = os.path.join(HERE, "tutorial.py")
CLASSES = ["tshirt-top", "trouser"]


def run(cmd, env=None):
    """Runs cmd; returns (wall seconds, peak RSS in MiB, JSON events, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        text = out.read().decode()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("bench: %s failed:\n%s\n%s" % (" ".join(cmd), text, err.read().decode()))
    events = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    return wall, ru.ru_maxrss / 1024.0, events, text


def prepare(tfcat, work):
    import cv2
    data, pred = os.path.join(work, "data"), os.path.join(work, "predict")
    if os.path.isdir(data) and os.path.isdir(pred):
        return data, pred
    raw = os.path.join(work, "raw")
    for split, limit in (("train", 1000), ("test", 500)):
        subprocess.run([tfcat, "data", "fashion-mnist", "--out", os.path.join(raw, split), "--split", split,
                        "--classes", ",".join(CLASSES), "--limit", str(limit)], check=True, stdout=subprocess.DEVNULL)
    for split, dst in (("train", data), ("test", pred)):
        for i, c in enumerate(CLASSES):
            os.makedirs(os.path.join(dst, c), exist_ok=True)
            for f in sorted(glob.glob(os.path.join(raw, split, c, "*.png"))):
                g = cv2.imread(f, cv2.IMREAD_GRAYSCALE)
                g = cv2.resize(g, (128, 128), 0, 0, cv2.INTER_LINEAR)
                bgr = cv2.applyColorMap(g, cv2.COLORMAP_JET if i == 0 else cv2.COLORMAP_VIRIDIS)
                name = os.path.splitext(os.path.basename(f))[0] + ".jpg"
                cv2.imwrite(os.path.join(dst, c, name), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return data, pred


def step_time(events, key_t, lo):
    """Seconds per step between step lo and the last step event."""
    steps = [(e["step"], e[key_t]) for e in events if e.get("event") == "step"]
    first = [t for s, t in steps if s == lo]
    last_step, last_t = steps[-1]
    return (last_t - first[0]) / (last_step - lo)


def flops_per_image(size=128, channels=3, convs=((3, 32), (3, 32), (3, 64)), fc=128, classes=2):
    macs, h, c = 0, size, channels
    for k, f in convs:
        macs += h * h * k * k * c * f
        h, c = (h + 1) // 2, f
    macs += h * h * c * fc + fc * classes
    return 2 * macs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfcat", required=True)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tfcat-bench"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    a = ap.parse_args()
    py = sys.executable
    os.makedirs(a.work, exist_ok=True)
    data, pred = prepare(a.tfcat, a.work)
    one = sorted(glob.glob(os.path.join(pred, "*", "*.jpg")))[0]
    n_pred = len(glob.glob(os.path.join(pred, "*", "*.jpg")))
    n_data = len(glob.glob(os.path.join(data, "*", "*.jpg")))
    lo = 10
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    r = {k: ([], []) for k in ("a", "a0", "b", "c", "d", "e", "e0", "f", "g")}
    for rep in range(a.repeats):
        print("repeat %d/%d ..." % (rep + 1, a.repeats), file=sys.stderr, flush=True)
        for side in (0, 1):
            model = os.path.join(a.work, "model-%d" % side)
            if side == 0:
                cmd = ["train", "--data", data, "--iterations", str(a.iterations), "--model-dir", model,
                       "--json", "--device", "/cpu:0", "-q"]
                _, _, ev0, _ = run([a.tfcat] + cmd, env)
                r["a0"][0].append(step_time(ev0, "elapsed_s", lo))
                wall, rss, ev, _ = run([a.tfcat, "--onednn"] + cmd, env)
                st = step_time(ev, "elapsed_s", lo)
                load = next(e["load_seconds"] for e in ev if e.get("event") == "start")
            else:
                wall, rss, ev, _ = run([py, TUTORIAL, "train", data, model, str(a.iterations)], env)
                st = step_time(ev, "t", lo)
                _, _, pev, _ = run([py, TUTORIAL, "preprocess", data], env)
                load = pev[-1]["seconds"]
            r["a"][side].append(st)
            if side == 1:
                r["a0"][1].append(st)
            r["b"][side].append(wall)
            r["c"][side].append(rss)
            r["f"][side].append(n_data / load)
            r["g"][side].append(3 * flops_per_image() * 32 / st / 1e9)
        # Predict with the model Python trained, on both sides.
        pymodel = os.path.join(a.work, "model-1")
        for side in (0, 1):
            if side == 0:
                w1, _, _, _ = run([a.tfcat, "predict", "-q", "--model", pymodel, one], env)
                wn, _, _, _ = run([a.tfcat, "predict", "-q", "--model", pymodel, pred], env)
                r["e0"][0].append((n_pred - 1) / (wn - w1))
                w1d, _, _, _ = run([a.tfcat, "--onednn", "predict", "-q", "--model", pymodel, one], env)
                wnd, _, _, _ = run([a.tfcat, "--onednn", "predict", "-q", "--model", pymodel, pred], env)
                tput = (n_pred - 1) / (wnd - w1d)
            else:
                w1, _, _, _ = run([py, TUTORIAL, "predict", pymodel, one], env)
                _, _, ev, _ = run([py, TUTORIAL, "predict-loop", pymodel, pred], env)
                tput = ev[-1]["images"] / ev[-1]["seconds"]
                r["e0"][1].append(tput)
            r["d"][side].append(w1)
            r["e"][side].append(tput)
    _, _, ev, _ = run([py, TUTORIAL, "matmul", "2048"], env)
    peak = ev[-1]["gflops"]

    med = {k: (statistics.median(v[0]), statistics.median(v[1])) for k, v in r.items()}
    rows = [
        ("a", "training step, steady state (s/step, batch 32)", "%.3f", "<= 1.0", lambda t, p: t / p),
        ("a0", "  the same, tfcat with TF's default kernels", "%.3f", "", lambda t, p: t / p),
        ("b", "end-to-end training, %d steps (s)" % a.iterations, "%.1f", "<= 0.8", lambda t, p: t / p),
        ("c", "peak RSS of training, %d images (MiB)" % n_data, "%.0f", "<= 0.6", lambda t, p: t / p),
        ("d", "one-image predict from process start (s)", "%.2f", "<= 0.15", lambda t, p: t / p),
        ("e", "folder predict, %d images (images/s)" % n_pred, "%.0f", ">= 3", lambda t, p: t / p),
        ("e0", "  the same, tfcat with TF's default kernels", "%.0f", "", lambda t, p: t / p),
        ("f", "decode + resize (images/s)", "%.0f", "", lambda t, p: t / p),
        ("g", "training GFLOP/s (peak MatMul %.0f)" % peak, "%.1f", "reported", lambda t, p: t / p),
    ]
    if a.markdown:
        print("| | measure | tfcat | Python | tfcat / Python | target |")
        print("|---|---|---|---|---|---|")
        for k, name, fmt, target, ratio in rows:
            t, p = med[k]
            print("| %s | %s | %s | %s | %.2f | %s |" % (k, name, fmt % t, fmt % p, ratio(t, p), target))
    else:
        print("%-3s %-48s %10s %10s %8s  %s" % ("", "measure (median of %d)" % a.repeats, "tfcat", "Python", "ratio", "target"))
        for k, name, fmt, target, ratio in rows:
            t, p = med[k]
            print("%-3s %-48s %10s %10s %8.2f  %s" % (k, name, fmt % t, fmt % p, ratio(t, p), target))
    print("g: tfcat at %.0f%% and Python at %.0f%% of the %.0f GFLOP/s MatMul peak (3 x forward FLOPs per step)"
          % (100 * med["g"][0] / peak, 100 * med["g"][1] / peak, peak))


if __name__ == "__main__":
    main()
