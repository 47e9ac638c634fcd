"""Per-op profile of the Python tutorial's training step (tfsession/testdata/tutorial.py's
graph, the same TensorFlow), from RunOptions(trace_level=FULL_TRACE) and the RunMetadata's
step stats, summed by op type: the Python side of `go run ./scripts/profile`.

usage: pyprofile.py   prints the median step time and the top op types
"""
import collections
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tfsession", "testdata"))
import numpy as np  # noqa: E402
import tutorial as T  # noqa: E402


def main():
    tf1 = T.tf1
    x, y, _, _, opt, _ = T.build()
    rng = np.random.RandomState(0)
    fx = rng.rand(32, 128, 128, 3).astype(np.float32)
    fy = np.eye(2, dtype=np.float32)[rng.randint(0, 2, 32)]
    s = tf1.Session()
    s.run(tf1.global_variables_initializer())
    for _ in range(3):
        s.run(opt, {x: fx, y: fy})
    ts = []
    for _ in range(20):
        t = time.perf_counter()
        s.run(opt, {x: fx, y: fy})
        ts.append(time.perf_counter() - t)
    print("python step median %.1f ms" % (1e3 * sorted(ts)[10]))
    tot, cnt = collections.Counter(), collections.Counter()
    traces = 5
    for _ in range(traces):
        ro, md = tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE), tf1.RunMetadata()
        s.run(opt, {x: fx, y: fy}, options=ro, run_metadata=md)
        for d in md.step_stats.dev_stats:
            for n in d.node_stats:
                m = re.match(r".* = ([^(]+)\(", n.timeline_label)
                k = m.group(1) if m else n.node_name
                tot[k] += n.all_end_rel_micros / 1e3 / traces
                cnt[k] += 1 / traces
    total = sum(tot.values())
    for k, v in tot.most_common(14):
        print("%-36s %4.0f %7.1f ms %5.1f%%" % (k, cnt[k], v, 100 * v / total))


if __name__ == "__main__":
    main()
