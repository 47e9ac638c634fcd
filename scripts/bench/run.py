"""tfcat against what a user would pick instead, side by side in one run on one machine.

Prepares a two-class folder of 2,000 128x128 BGR JPEGs (Fashion-MNIST T-shirt/top and
Trouser, upscaled with cv2 and coloured with a colour map) and 1,000 more to predict,
then runs each tool in turn, --repeats times (all tools once, then again), on the
tutorial's network (3 conv 3x3 32/32/64 + fc 128, batch 32, Adam 1e-4), the same data
and all cores:

  tfcat          tfcat's defaults (oneDNN kernels, see internal/onednn)
  tfcat-nodnn    tfcat --onednn=false with TF_ENABLE_ONEDNN_OPTS=0: TensorFlow's
                 default Eigen kernels
  tfcat-bf16     tfcat --precision bf16: Grappler's oneDNN bfloat16 rewrite
                 (auto_mixed_precision_onednn_bfloat16), variables float32
  tutorial       the tutorial's TF1 Python (scripts/bench/tutorial.py), feed_dict
  tutorial-bf16  the same with the same rewrite in its Session's ConfigProto
  keras          Keras 3 model.fit over tf.data (scripts/bench/peers.py)
  keras-bf16     the same under the mixed_bfloat16 policy (logits and loss float32)
  keras-xla      the same with jit_compile=True (XLA), --xla-steps steps
  jax            plain JAX, jitted step, optax Adam, NumPy batches
  gomlx          GoMLX (scripts/bench/gomlx, its own Go module), built here; left
                 out with a note where it is absent or does not build; it has no
                 predict command, so its predict rows are "-"

The -bf16 rows run only where oneDNN multiplies bfloat16 in hardware (AVX512_BF16
or AMX, as tfcat's --precision bf16 requires); elsewhere they are left out with a
note, since emulated bfloat16 is slower than float32 and says nothing.

Rows, medians over the repeats:

  steady   steady-state training images/s: 320 / the median time of 10 steps
  e2e      end-to-end training (s): process start to the model on disk, --steps steps,
           every tool validating on its whole 20% split after each epoch (the tutorial:
           one batch, as it does)
  rss      peak RSS of that run (MiB)
  one      one-image predict from process start (s)
  folder   folder predict (images/s): tfcat (n-1)/(time of n images - time of 1);
           Python tools time their predict loop inside the process
  gflops   training GFLOP/s (3 x forward FLOPs per image x steady images/s) against a
           2048x2048 MatMul chain in the same TensorFlow (float32: bf16 rows may pass it)

Then the accuracy check of tfcat's default speed settings against TensorFlow's default
kernels: probabilities on the 1,000 prediction images within 1e-5, and the loss of
30 training steps within 1e-4.

usage: run.py --tfcat BIN [--work DIR] [--repeats 1] [--steps 200] [--xla-steps 30]
              [--tools tfcat,tutorial,...] [--no-accuracy] [--markdown] [--json FILE]
       run.py --from-json FILE [--markdown]
"""
import argparse
import csv
import glob
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TUTORIAL = os.path.join(HERE, "tutorial.py")
PEERS = os.path.join(HERE, "peers.py")
CLASSES = ["tshirt-top", "trouser"]
TOOLS = ["tfcat", "tfcat-nodnn", "tfcat-bf16", "tutorial", "tutorial-bf16", "keras", "keras-bf16", "keras-xla", "jax",
         "gomlx"]
GOMLX = os.path.join(HERE, "gomlx")
BATCH = 32


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


def steady(events, key_t):
    """Images/s at steady state: 10 steps of BATCH over the median time of 10 steps
    (step events every 10 steps; the first interval, with start-up and compilation,
    left out)."""
    t = {e["step"]: e[key_t] for e in events if e.get("event") == "step" and e["step"] % 10 == 0}
    steps = sorted(t)
    d = [t[b] - t[a] for a, b in zip(steps[1:], steps[2:])]
    return 10 * BATCH / statistics.median(d)


def flops_per_image(size=128, channels=3, convs=((3, 32), (3, 32), (3, 64)), fc=128, classes=2):
    macs, h, c = 0, size, channels
    for k, f in convs:
        macs += h * h * k * k * c * f
        h, c = (h + 1) // 2, f
    macs += h * h * c * fc + fc * classes
    return 2 * macs


def load():
    return os.getloadavg()[0]


def bf16_missing():
    """Why bfloat16 rows would say nothing here, or None: as tfcat's onednn.BF16,
    the CPU needs AVX512_BF16 or AMX and ONEDNN_MAX_CPU_ISA must not cap oneDNN
    below them (elsewhere oneDNN emulates bfloat16, slower than float32)."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if isa in ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"):
        return "ONEDNN_MAX_CPU_ISA=%s caps oneDNN below bfloat16" % isa
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError as e:
        return "cannot read /proc/cpuinfo (%s)" % e
    if flags & {"avx512_bf16", "amx_bf16"}:
        return None
    return "the CPU has neither AVX512_BF16 nor AMX (oneDNN would emulate bfloat16, slower than float32)"


def build_gomlx(work):
    """Builds scripts/bench/gomlx into work; (binary, None) or (None, why not).
    Its go.mod is its own: -mod=mod lets go fill in go.sum as it resolves."""
    if not os.path.exists(os.path.join(GOMLX, "go.mod")):
        return None, "scripts/bench/gomlx/go.mod is absent"
    binary = os.path.join(work, "gomlx-bench")
    env = dict(os.environ, GOFLAGS="-mod=mod")
    try:
        p = subprocess.run([os.environ.get("GO", "go"), "build", "-o", binary, "."], cwd=GOMLX, env=env,
                           capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "go build failed: %s" % e
    if p.returncode != 0:
        tail = " | ".join((p.stderr or p.stdout).strip().splitlines()[-5:])
        return None, "go build failed (exit %d): %s" % (p.returncode, tail)
    return binary, None


def tfcat_pre(tool, a):
    return [a.tfcat] + (["--onednn=false"] if tool == "tfcat-nodnn" else [])


def tfcat_precision(tool):
    return ["--precision", "bf16"] if tool == "tfcat-bf16" else []


def train_cmd(tool, a, py, data, model, steps):
    """The command and the JSON key of its step timestamps."""
    if tool.startswith("tfcat"):
        return tfcat_pre(tool, a) + ["train", "--data", data, "--iterations", str(steps), "--model-dir", model,
                                     "--json", "--device", "/cpu:0", "-q"] + tfcat_precision(tool), "elapsed_s"
    if tool == "tutorial":
        return [py, TUTORIAL, "train", data, model, str(steps)], "t"
    if tool == "tutorial-bf16":
        return [py, TUTORIAL, "train", data, model, str(steps), "--bf16"], "t"
    if tool == "keras":
        return [py, PEERS, "keras-train", data, model, str(steps)], "t"
    if tool == "keras-bf16":
        return [py, PEERS, "keras-train", data, model, str(steps), "bf16"], "t"
    if tool == "keras-xla":
        return [py, PEERS, "keras-train", data, model, str(steps), "jit"], "t"
    if tool == "gomlx":
        # No model directory in its interface: it trains and reports, as the others do.
        return [a.gomlx, "train", data, str(steps)], "t"
    return [py, PEERS, "jax-train", data, model, str(steps)], "t"


def predict(tool, a, py, model, one, folder, n, env):
    """(one-image seconds from process start, folder images/s); None for a tool
    without a predict command. bf16 rows predict in bf16 too (keras-bf16's .keras
    file keeps its layers' mixed_bfloat16 policy)."""
    if tool == "gomlx":
        return None
    if tool.startswith("tfcat"):
        pre, prec = tfcat_pre(tool, a), tfcat_precision(tool)
        w1, _, _, _ = run(pre + ["predict", "-q", "--model", model] + prec + [one], env)
        wn, _, _, _ = run(pre + ["predict", "-q", "--model", model] + prec + [folder], env)
        return w1, (n - 1) / (wn - w1)
    if tool.startswith("tutorial"):
        bf16 = ["--bf16"] if tool == "tutorial-bf16" else []
        w1, _, _, _ = run([py, TUTORIAL, "predict", model, one] + bf16, env)
        _, _, ev, _ = run([py, TUTORIAL, "predict-loop", model, folder] + bf16, env)
    else:
        kind = "keras" if tool.startswith("keras") else "jax"
        w1, _, _, _ = run([py, PEERS, kind + "-predict", model, one], env)
        _, _, ev, _ = run([py, PEERS, kind + "-predict", model, folder], env)
    return w1, ev[-1]["images"] / ev[-1]["seconds"]


def accuracy_check(a, data, folder, env):
    """Largest probability and loss differences, tfcat's defaults against TensorFlow's
    default kernels (TF_ENABLE_ONEDNN_OPTS=0) running the tutorial's gradients as the
    C API builds them (--fuse-gradients=false): on the prediction images, with the
    model trained on the default kernels, and over 30 training steps."""
    plain_env = dict(env, TF_ENABLE_ONEDNN_OPTS="0")
    losses, models = {}, {}
    for tag, pre, e in (("plain", [a.tfcat, "--onednn=false"], plain_env), ("fast", [a.tfcat], env)):
        models[tag] = os.path.join(a.work, "acc-" + tag)
        shutil.rmtree(models[tag], ignore_errors=True)
        run(pre + ["train", "--data", data, "--iterations", "30", "--model-dir", models[tag],
                   "--json", "--device", "/cpu:0", "-q", "--validation", "0"] +
            (["--fuse-gradients=false"] if tag == "plain" else []), e)
        # The history keeps every step's loss (--json prints every tenth).
        with open(os.path.join(models[tag], "history.jsonl")) as f:
            losses[tag] = [x["loss"] for x in map(json.loads, f) if x.get("event") == "step"]
    probs = {}
    for tag, pre, e in (("plain", [a.tfcat, "--onednn=false"], plain_env), ("fast", [a.tfcat], env)):
        _, _, _, out = run(pre + ["predict", "-q", "--format", "csv", "--model", models["plain"], folder], e)
        probs[tag] = {r[0]: [float(v) for v in r[2:]] for r in list(csv.reader(io.StringIO(out)))[1:]}
    p, f = probs["plain"], probs["fast"]
    dp = max(abs(x - y) for k in p for x, y in zip(p[k], f[k]))
    changed = sum(p[k].index(max(p[k])) != f[k].index(max(f[k])) for k in p)
    lp, lf = losses["plain"], losses["fast"]
    dl = max(abs(x - y) for x, y in zip(lp, lf))
    return {"images": len(p), "max_prob_diff": dp, "classes_changed": changed, "steps": len(lp),
            "max_loss_diff": dl, "final_loss": [lp[-1], lf[-1]]}


def versions(py):
    code = ("import json, importlib.metadata as m\n"
            "print(json.dumps({k: m.version(k) for k in ['tensorflow-cpu', 'keras', 'jax', 'jaxlib', 'optax', 'numpy', "
            "'opencv-python-headless', 'matplotlib']}))")
    return json.loads(subprocess.run([py, "-c", code], check=True, capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfcat", help="the tfcat binary (all but --from-json)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tfcat-bench"))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--steps", type=int, default=200, help="training steps (a multiple of 50: whole epochs)")
    ap.add_argument("--xla-steps", type=int, default=30, help="steps for keras-xla (XLA's CPU convolutions are slow)")
    ap.add_argument("--gomlx-steps", type=int, default=30, help="steps for gomlx (its pure-Go backend runs a few images/s)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--no-accuracy", action="store_true", help="skip the accuracy check")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--json", help="write the results here (for scripts/bench/plot.py)")
    ap.add_argument("--from-json", help="print the table of an earlier --json file and stop")
    a = ap.parse_args()
    if a.from_json:
        with open(a.from_json) as f:
            report(json.load(f), a.markdown)
        return
    if not a.tfcat:
        ap.error("--tfcat is required")
    tools = [t for t in a.tools.split(",") if t]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        sys.exit("bench: unknown tools %s (known: %s)" % (",".join(unknown), ",".join(TOOLS)))
    py = sys.executable
    os.makedirs(a.work, exist_ok=True)
    # Rows that cannot run here are left out with a note, not a failure: the
    # rest of the table still says something.
    notes = []
    why = bf16_missing() if any(t.endswith("-bf16") for t in tools) else None
    if why:
        notes.append("bf16 rows left out: " + why)
        tools = [t for t in tools if not t.endswith("-bf16")]
    if "gomlx" in tools:
        a.gomlx, why = build_gomlx(a.work)
        if why:
            notes.append("gomlx left out: " + why)
            tools.remove("gomlx")
    for n in notes:
        print("bench: " + n, file=sys.stderr, flush=True)
    if not tools:
        sys.exit("bench: every tool asked for was left out")
    data, pred = prepare(a.tfcat, a.work)
    one = sorted(glob.glob(os.path.join(pred, "*", "*.jpg")))[0]
    n_pred = len(glob.glob(os.path.join(pred, "*", "*.jpg")))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    info = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(), "load_start": load(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "versions": versions(py),
            "steps": a.steps, "xla_steps": a.xla_steps, "gomlx_steps": a.gomlx_steps, "repeats": a.repeats, "notes": notes}
    r = {t: {k: [] for k in ("steady", "e2e", "rss", "one", "folder")} for t in tools}
    for rep in range(a.repeats):
        for tool in tools:
            print("repeat %d/%d: %s (load %.1f) ..." % (rep + 1, a.repeats, tool, load()), file=sys.stderr, flush=True)
            e = dict(env, TF_ENABLE_ONEDNN_OPTS="0") if tool == "tfcat-nodnn" else env
            model = os.path.join(a.work, "model-" + tool)
            steps = min(a.steps, a.xla_steps) if tool == "keras-xla" else min(a.steps, a.gomlx_steps) if tool == "gomlx" else a.steps
            cmd, key = train_cmd(tool, a, py, data, model, steps)
            wall, rss, ev, _ = run(cmd, e)
            r[tool]["steady"].append(steady(ev, key))
            r[tool]["e2e"].append(wall)
            r[tool]["rss"].append(rss)
            p = predict(tool, a, py, model, one, pred, n_pred, e)
            if p:
                r[tool]["one"].append(p[0])
                r[tool]["folder"].append(p[1])
    _, _, ev, _ = run([py, TUTORIAL, "matmul", "2048"], env)
    peak = ev[-1]["gflops"]
    acc = None if a.no_accuracy else accuracy_check(a, data, pred, env)
    info["load_end"] = load()
    med = {t: {k: statistics.median(v) if v else None for k, v in r[t].items()} for t in tools}
    for t in tools:
        med[t]["gflops"] = 3 * flops_per_image() * med[t]["steady"] / 1e9
    info["images_predicted"] = n_pred
    res = {"info": info, "median": med, "all": r, "peak_gflops": peak, "accuracy": acc}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    report(res, a.markdown)


def ratio_of(med, a, b, k):
    """med[a][k] / med[b][k], NaN where a tool or its measure is missing."""
    if a not in med or b not in med or med[a][k] is None or med[b][k] is None:
        return float("nan")
    return med[a][k] / med[b][k]


def report(res, markdown):
    """Prints the table of res (what main measured, or a --json file read back)."""
    info, med, peak, acc = res["info"], res["median"], res["peak_gflops"], res["accuracy"]
    tools = list(med)
    rows = [("steady", "training, steady state (images/s)", "%.0f"),
            ("e2e", "end-to-end training, %d steps (s)" % info["steps"], "%.1f"),
            ("rss", "peak RSS of training (MiB)", "%.0f"),
            ("one", "one-image predict from process start (s)", "%.2f"),
            ("folder", "folder predict, %d images (images/s)" % info["images_predicted"], "%.0f"),
            ("gflops", "training GFLOP/s (MatMul peak %.0f)" % peak, "%.1f")]
    base = "tutorial" if "tutorial" in tools else tools[0]
    width = max([11] + [len(t) for t in tools])  # tutorial-bf16 is wider than the numbers
    if markdown:
        print("| measure | " + " | ".join(tools) + " | tfcat / %s |" % base)
        print("|---" * (len(tools) + 2) + "|")
    for k, name, fmt in rows:
        # None: a tool without that measure (gomlx has no predict).
        vals = ["-" if med[t][k] is None else fmt % med[t][k] for t in tools]
        ratio = ratio_of(med, "tfcat", base, k)
        if markdown:
            print("| %s | %s | %.2f |" % (name, " | ".join(vals), ratio))
        else:
            print("%-44s %s  %6.2f" % (name, " ".join("%*s" % (width, v) for v in vals), ratio))
    if not markdown:
        print("%-44s %s  tfcat / %s" % ("", " ".join("%*s" % (width, t) for t in tools), base))
    # Peers at equal precision: f32 rows against tfcat, bf16 rows against tfcat-bf16.
    for own, bf16 in (("tfcat", False), ("tfcat-bf16", True)):
        peers = [t for t in tools if not t.startswith("tfcat") and t.endswith("-bf16") == bf16]
        if own in tools and peers:
            best = max(peers, key=lambda t: med[t]["steady"])
            tut = "tutorial-bf16" if bf16 else "tutorial"
            print("%s steady / best %s peer (%s): %.2f; %s e2e / %s: %s" % (
                own, "bf16" if bf16 else "f32", best, med[own]["steady"] / med[best]["steady"], own, tut,
                "%.2f" % ratio_of(med, own, tut, "e2e") if tut in tools else "-"))
    pairs = [(t + "-bf16", t) for t in ("tfcat", "tutorial", "keras") if t in tools and t + "-bf16" in tools]
    if pairs:
        print("bf16 / f32 steady: " + ", ".join("%s %.2f" % (f, ratio_of(med, b, f, "steady")) for b, f in pairs))
    if "keras-xla" in tools and info["xla_steps"] < info["steps"]:
        print("keras-xla trains %d steps, not %d: its e2e and RSS are for those" % (info["xla_steps"], info["steps"]))
    if "gomlx" in tools and info.get("gomlx_steps", info["steps"]) < info["steps"]:
        print("gomlx trains %d steps, not %d: its e2e and RSS are for those" % (info["gomlx_steps"], info["steps"]))
    if "gomlx" in tools:
        print("gomlx has no predict command: its predict rows are -")
    if "tfcat" in tools:
        print("tfcat at %.0f%% of the %.0f GFLOP/s MatMul peak" % (100 * med["tfcat"]["gflops"] / peak, peak))
    if acc:
        print("accuracy, tfcat defaults vs TF default kernels: %d images, max probability difference %.2g (%d classes "
              "changed); %d steps, max loss difference %.2g (final %.7f vs %.7f)" % (
                  acc["images"], acc["max_prob_diff"], acc["classes_changed"], acc["steps"], acc["max_loss_diff"],
                  acc["final_loss"][0], acc["final_loss"][1]))
    for n in info.get("notes", []):
        print(n)
    print("load average %.1f at the start, %.1f at the end; %s" % (info["load_start"], info["load_end"], info["date"]))
    if acc and (acc["max_prob_diff"] > 1e-5 or acc["max_loss_diff"] > 1e-4):
        sys.exit("bench: tfcat's speed settings change the results beyond the tolerance")

if __name__ == "__main__":
    main()
