"""Draws scripts/bench/run.py's results (its --json file) as a bar chart PNG:
one panel per measure, one bar per tool, the measure's better direction in the title.
bf16 rows take their f32 row's colour, hatched; a tool without a measure (gomlx has
no predict) gets no bar and a "-".

usage: plot.py RESULTS.json OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = [
    ("steady", "training, steady state\nimages/s (higher is better)"),
    ("e2e", "end-to-end training\nseconds (lower is better)"),
    ("rss", "peak RSS of training\nMiB (lower is better)"),
    ("one", "one-image predict from start\nseconds (lower is better)"),
    ("folder", "folder predict\nimages/s (higher is better)"),
]
COLOURS = {"tfcat": "#1b7837", "tfcat-nodnn": "#7fbf7b", "tutorial": "#762a83", "keras": "#2166ac",
           "keras-xla": "#92c5de", "jax": "#b2182b", "gomlx": "#e08214"}


def colour(tool):
    return COLOURS.get(tool[:-len("-bf16")] if tool.endswith("-bf16") else tool, "grey")


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        res = json.load(f)
    med, info = res["median"], res["info"]
    tools = list(med)
    # Panels widen past six tools, so the rotated names do not run together.
    fig, axes = plt.subplots(1, len(PANELS), figsize=(max(4, 0.6 * len(tools)) * len(PANELS), 4.2))
    for ax, (key, title) in zip(axes, PANELS):
        vals = [med[t][key] for t in tools]
        bars = ax.bar(range(len(tools)), [0 if v is None else v for v in vals], color=[colour(t) for t in tools],
                      edgecolor="white")  # white hatching on the bf16 rows
        for b, t in zip(bars, tools):
            if t.endswith("-bf16"):
                b.set_hatch("//")
        ax.set_xticks(range(len(tools)), tools, rotation=35, ha="right", fontsize=9)
        ax.set_title(title, fontsize=10)
        for b, v in zip(bars, vals):
            label = "-" if v is None else "%.0f" % v if v >= 100 else "%.3g" % v
            ax.annotate(label, (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=8)
        ax.margins(y=0.15)
    fewer = ["%s %d" % (t, min(info["steps"], info[k])) for t, k in (("keras-xla", "xla_steps"), ("gomlx", "gomlx_steps"))
             if t in tools and k in info]
    note = "%d steps%s" % (info["steps"], " (%s)" % ", ".join(fewer) if fewer else "")
    if any(t.endswith("-bf16") for t in tools):
        note += "; -bf16: bfloat16 compute, float32 variables"
    fig.suptitle("tutorial CNN, 128x128x3, batch 32, %d cores, %s; %s, median of %d; load %.1f-%.1f" % (
        info["cores"], info["date"], note, info["repeats"], info["load_start"], info["load_end"]), fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main()
