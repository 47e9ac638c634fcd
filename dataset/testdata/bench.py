#!/usr/bin/env python3
"""Times the tutorial's per-image loop (cv2.imread + cv2.resize + float32) over
every file in the class folders of DIR and prints images per second.

usage: bench.py DIR SIZE
"""
import glob
import os
import sys
import time

import cv2
import numpy as np

d, size = sys.argv[1], int(sys.argv[2])
files = sorted(glob.glob(os.path.join(d, "*", "*g")))
start = time.perf_counter()
for f in files:
    img = cv2.imread(f)
    img = cv2.resize(img, (size, size), 0, 0, cv2.INTER_LINEAR)
    img = np.multiply(img.astype(np.float32), 1.0 / 255.0)
elapsed = time.perf_counter() - start
print(f"{len(files) / elapsed:.1f}")
