#!/usr/bin/env python3
"""Reference data for tfcat's dataset parity test (dataset/parity_test.go).

usage: parity.py OUTDIR

Generates a corpus of JPEG, PNG, BMP and GIF files under OUTDIR/corpus and,
for each file, what the Python stack of the tutorial computes from it:

  dec3 = cv2.imread(path)                          (IMREAD_COLOR, BGR)
  dec1 = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
  r128 = cv2.resize(dec3, (128, 128), 0, 0, cv2.INTER_LINEAR);  f128 = float32 of it
  r28  = cv2.resize(dec1, (28, 28), 0, 0, cv2.INTER_LINEAR);    f28  = float32 of it

where float32 is the tutorial's np.multiply(img.astype(np.float32), 1.0 / 255.0).
It also writes resize-only cases (random images, many source and target sizes)
and the float32 of all 256 byte values. OUTDIR/manifest.json lists everything.
Needs numpy, opencv-python-headless and pillow; writes nothing outside OUTDIR.
"""

import io
import json
import os
import struct
import sys
import zlib

import cv2
import numpy as np
from PIL import Image

OUT = sys.argv[1]
CORPUS = os.path.join(OUT, "corpus")
REF = os.path.join(OUT, "ref")
os.makedirs(CORPUS, exist_ok=True)
os.makedirs(REF, exist_ok=True)

rng = np.random.default_rng(20240611)
manifest = {"files": [], "resize": [], "versions": {
    "opencv": cv2.__version__, "numpy": np.__version__, "pillow": Image.__version__}}


def tofloat(img):
    return np.multiply(img.astype(np.float32), 1.0 / 255.0)


_big = {}


def content(w, h, seed):
    """BGR uint8 test pattern: gradients, saturated blocks, noise, thin lines."""
    if w * h > 4_000_000:  # the big ones are slow to make: one pattern per size
        if (w, h) not in _big:
            _big[(w, h)] = _content(w, h, 7)
        return _big[(w, h)]
    return _content(w, h, seed)


def _content(w, h, seed):
    r = np.random.default_rng(seed)
    if w * h <= 16:
        return r.integers(0, 256, (h, w, 3), dtype=np.uint8)
    y, x = np.ogrid[0:h, 0:w]
    x = x.astype(np.float32)
    y = y.astype(np.float32)
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (255 * x / max(w - 1, 1)).astype(np.uint8)
    img[..., 1] = (255 * y / max(h - 1, 1)).astype(np.uint8)
    img[..., 2] = (127.5 + 127.5 * np.sin((x + 2 * y) * np.float32(12 / max(w, h)))).astype(np.uint8)
    # saturated blocks with hard edges
    for _ in range(6):
        x0, y0 = r.integers(0, w), r.integers(0, h)
        x1, y1 = x0 + r.integers(1, max(2, w // 3)), y0 + r.integers(1, max(2, h // 3))
        img[y0:y1, x0:x1] = r.choice([0, 255], 3)
    # noise region
    nx, ny = w // 2, h // 2
    img[ny:, nx:] = r.integers(0, 256, (h - ny, w - nx, 3), dtype=np.uint8)
    # thin lines
    img[:, r.integers(0, w)] = [255, 0, 255]
    img[r.integers(0, h), :] = [0, 255, 0]
    return img


def gray_content(w, h, seed):
    return cv2.cvtColor(content(w, h, seed), cv2.COLOR_BGR2GRAY)


def save_npy(name, arr):
    np.save(os.path.join(REF, name), np.ascontiguousarray(arr))


def record(path, kind, expect_error=False):
    """expect_error: tfcat refuses the file as truncated (cv2.imread may not)."""
    name = os.path.basename(path)
    entry = {"file": name, "kind": kind, "expect_error": expect_error}
    dec3 = cv2.imread(path)
    dec1 = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if dec3 is None or dec1 is None:
        entry["none"] = True
    else:
        save_npy(name + ".dec3.npy", dec3)
        save_npy(name + ".dec1.npy", dec1)
        r128 = cv2.resize(dec3, (128, 128), 0, 0, cv2.INTER_LINEAR)
        r28 = cv2.resize(dec1, (28, 28), 0, 0, cv2.INTER_LINEAR)
        save_npy(name + ".r128.npy", r128)
        save_npy(name + ".f128.npy", tofloat(r128))
        save_npy(name + ".r28.npy", r28)
        save_npy(name + ".f28.npy", tofloat(r28))
    manifest["files"].append(entry)


def path_for(name):
    return os.path.join(CORPUS, name)


SIZES = [(1, 1), (2, 3), (127, 129), (128, 128), (256, 256), (512, 512),
         (200, 150), (97, 61), (333, 500), (640, 480)]
SMALL_SIZES = [(1, 1), (2, 3), (127, 129), (256, 256), (97, 61), (333, 500)]

# ---------------------------------------------------------------- JPEG
J = cv2.IMWRITE_JPEG_SAMPLING_FACTOR
jpeg_kinds = {
    "jpeg-444": [cv2.IMWRITE_JPEG_QUALITY, 90, J, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444],
    "jpeg-422": [cv2.IMWRITE_JPEG_QUALITY, 90, J, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422],
    "jpeg-420": [cv2.IMWRITE_JPEG_QUALITY, 90, J, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420],
    "jpeg-440": [cv2.IMWRITE_JPEG_QUALITY, 90, J, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440],
    "jpeg-411": [cv2.IMWRITE_JPEG_QUALITY, 90, J, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411],
    "jpeg-progressive-420": [cv2.IMWRITE_JPEG_QUALITY, 85, cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
    "jpeg-progressive-444": [cv2.IMWRITE_JPEG_QUALITY, 85, cv2.IMWRITE_JPEG_PROGRESSIVE, 1,
                             J, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444],
    "jpeg-restart": [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_RST_INTERVAL, 2],
    "jpeg-optimized-q50": [cv2.IMWRITE_JPEG_QUALITY, 50, cv2.IMWRITE_JPEG_OPTIMIZE, 1],
    "jpeg-q100": [cv2.IMWRITE_JPEG_QUALITY, 100],
}
seed = 1
for kind, params in jpeg_kinds.items():
    for (w, h) in SIZES:
        p = path_for(f"{kind}_{w}x{h}.jpg")
        cv2.imwrite(p, content(w, h, seed), params)
        record(p, kind)
        seed += 1
for kind, params in {"jpeg-gray": [cv2.IMWRITE_JPEG_QUALITY, 90],
                     "jpeg-gray-progressive": [cv2.IMWRITE_JPEG_QUALITY, 80, cv2.IMWRITE_JPEG_PROGRESSIVE, 1]}.items():
    for (w, h) in SMALL_SIZES:
        p = path_for(f"{kind}_{w}x{h}.jpg")
        cv2.imwrite(p, gray_content(w, h, seed), params)
        record(p, kind)
        seed += 1
# CMYK (Pillow writes Adobe-inverted CMYK with an APP14 marker)
for (w, h) in SMALL_SIZES:
    p = path_for(f"jpeg-cmyk_{w}x{h}.jpg")
    Image.fromarray(content(w, h, seed)[..., ::-1]).convert("CMYK").save(p, quality=90)
    record(p, "jpeg-cmyk")
    seed += 1
# RGB-coded JPEG (Adobe transform 0): Pillow keep_rgb
for (w, h) in [(127, 129), (200, 150)]:
    p = path_for(f"jpeg-rgb-coded_{w}x{h}.jpg")
    Image.fromarray(content(w, h, seed)[..., ::-1]).save(p, quality=90, keep_rgb=True)
    record(p, "jpeg-rgb-coded")
    seed += 1
# big ones
for (w, h), params in [((4000, 3000), jpeg_kinds["jpeg-420"]), ((3000, 4000), jpeg_kinds["jpeg-progressive-444"])]:
    p = path_for(f"jpeg-big_{w}x{h}.jpg")
    cv2.imwrite(p, content(w, h, seed), params)
    record(p, "jpeg-big")
    seed += 1


def tiff_orientation(o, big_endian=False, extra_before=False):
    """Minimal TIFF/EXIF block with IFD0 holding Orientation (and maybe others)."""
    e = ">" if big_endian else "<"
    entries = []
    if extra_before:
        entries.append(struct.pack(e + "HHI4s", 0x010F, 2, 4, b"tfc\0"))  # Make, inline
    entries.append(struct.pack(e + "HHIH2x", 0x0112, 3, 1, o))
    body = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    body += struct.pack(e + "H", len(entries)) + b"".join(entries) + struct.pack(e + "I", 0)
    return body


def jpeg_with_app1(img_bgr, payloads, quality=90):
    ok, enc = cv2.imencode(".jpg", img_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    data = enc.tobytes()
    segs = b""
    for pl in payloads:
        segs += b"\xff\xe1" + struct.pack(">H", len(pl) + 2) + pl
    return data[:2] + segs + data[2:]


# EXIF orientations 1-8, little- and big-endian, via Pillow and by hand
for o in range(1, 9):
    for (w, h) in [(127, 129), (640, 480)]:
        p = path_for(f"jpeg-exif-o{o}_{w}x{h}.jpg")
        ex = Image.Exif()
        ex[0x0112] = o
        ex[0x010F] = "tfcat"
        Image.fromarray(content(w, h, seed)[..., ::-1]).save(p, quality=90, exif=ex.tobytes())
        record(p, f"jpeg-exif-o{o}")
        seed += 1
    p = path_for(f"jpeg-exif-mm-o{o}_97x61.jpg")
    with open(p, "wb") as f:
        f.write(jpeg_with_app1(content(97, 61, seed), [b"Exif\0\0" + tiff_orientation(o, True, True)]))
    record(p, "jpeg-exif-bigendian")
    seed += 1
# EXIF oddities OpenCV has opinions on
specials = {
    "jpeg-exif-xmp-first": [b"http://ns.adobe.com/xap/1.0/\0<x/>", b"Exif\0\0" + tiff_orientation(6)],
    "jpeg-exif-no-signature": [b"Abcd\0\0" + tiff_orientation(6)],
    "jpeg-exif-truncated-ifd": [b"Exif\0\0" + tiff_orientation(6)[:14]],
    "jpeg-exif-orientation-9": [b"Exif\0\0" + tiff_orientation(9)],
    "jpeg-exif-two-app1": [b"Exif\0\0" + tiff_orientation(3), b"Exif\0\0" + tiff_orientation(6)],
}
for kind, payloads in specials.items():
    p = path_for(f"{kind}_200x150.jpg")
    with open(p, "wb") as f:
        f.write(jpeg_with_app1(content(200, 150, seed), payloads))
    record(p, kind)
    seed += 1
# trailing garbage before EOI: libjpeg warns (extraneous bytes), OpenCV loads it
ok, enc = cv2.imencode(".jpg", content(200, 150, seed), [cv2.IMWRITE_JPEG_QUALITY, 90])
data = enc.tobytes()
p = path_for("jpeg-extraneous-bytes_200x150.jpg")
with open(p, "wb") as f:
    f.write(data[:-2] + b"\x00\x11\x22\x33" + data[-2:])
record(p, "jpeg-extraneous-bytes")
seed += 1
# no EOI marker: libjpeg warns when finishing, after every pixel is decoded
for (w, h), params in [((200, 150), jpeg_kinds["jpeg-420"]), ((97, 61), jpeg_kinds["jpeg-444"])]:
    ok, enc = cv2.imencode(".jpg", content(w, h, seed), params)
    p = path_for(f"jpeg-no-eoi_{w}x{h}.jpg")
    with open(p, "wb") as f:
        f.write(enc.tobytes()[:-2])
    record(p, "jpeg-no-eoi")
    seed += 1
# progressive JPEG cut between two scans: libjpeg (and cv2.imread) return the
# partially refined image, with block smoothing; tfcat too
for (w, h), cut in [((200, 150), 3), ((333, 500), 6)]:
    ok, enc = cv2.imencode(".jpg", content(w, h, seed), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_QUALITY, 90])
    data = enc.tobytes()
    sos = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
    p = path_for(f"jpeg-progressive-cut{cut}_{w}x{h}.jpg")
    with open(p, "wb") as f:
        f.write(data[:sos[cut]])
    record(p, "jpeg-progressive-cut", expect_error=True)
    seed += 1
# baseline JPEG cut in the middle: cv2.imread returns it, grey-filled
for (w, h) in [(200, 150)]:
    ok, enc = cv2.imencode(".jpg", content(w, h, seed), jpeg_kinds["jpeg-420"])
    p = path_for(f"jpeg-truncated_{w}x{h}.jpg")
    with open(p, "wb") as f:
        f.write(enc.tobytes()[:len(enc) * 2 // 3])
    record(p, "jpeg-truncated", expect_error=True)
    seed += 1

# ---------------------------------------------------------------- PNG


def png_chunk(t, body):
    return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xffffffff)


def pack_rows(samples, depth):
    """samples: (h, w*channels) ints -> packed scanlines (without filter bytes)."""
    h = samples.shape[0]
    if depth == 16:
        return [samples[y].astype(">u2").tobytes() for y in range(h)]
    if depth == 8:
        return [samples[y].astype(np.uint8).tobytes() for y in range(h)]
    per = 8 // depth
    rows = []
    for y in range(h):
        row = samples[y]
        n = (len(row) + per - 1) // per
        out = bytearray(n)
        for i, v in enumerate(row):
            out[i // per] |= int(v) << (8 - depth * (i % per + 1))
        rows.append(bytes(out))
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, samples, color_type, depth, interlace=False, plte=None, trns=None,
              gama=None, srgb=None, sbit=None, exif=None, exif_after_idat=False, filt=None):
    """samples: (h, w, channels) array of sample values for the color type."""
    h, w = samples.shape[:2]
    ch = samples.shape[2]

    def scanlines(sub):
        sh, sw = sub.shape[:2]
        if sh == 0 or sw == 0:
            return b""
        rows = pack_rows(sub.reshape(sh, sw * ch), depth)
        out = b""
        for y, r in enumerate(rows):
            f = (y % 5) if filt is None else filt
            out += bytes([0]) + r if f == 0 else filtered(r, rows[y - 1] if y else bytes(len(r)), f, depth, ch)
        return out

    if interlace:
        raw = b"".join(scanlines(samples[y0::dy, x0::dx]) for (x0, y0, dx, dy) in ADAM7)
    else:
        raw = scanlines(samples)
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    if gama is not None:
        out += png_chunk(b"gAMA", struct.pack(">I", gama))
    if srgb is not None:
        out += png_chunk(b"sRGB", bytes([srgb]))
    if sbit is not None:
        out += png_chunk(b"sBIT", bytes(sbit))
    if exif is not None and not exif_after_idat:
        out += png_chunk(b"eXIf", exif)
    if plte is not None:
        out += png_chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).ravel()))
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    out += png_chunk(b"IDAT", zlib.compress(raw, 6))
    if exif is not None and exif_after_idat:
        out += png_chunk(b"eXIf", exif)
    out += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def filtered(row, prev, f, depth, ch):
    """PNG filter f (1 Sub, 2 Up, 3 Average, 4 Paeth) applied to one raw row."""
    bpp = max(1, (depth * ch) // 8)
    r = np.frombuffer(row, np.uint8).astype(np.int32)
    b = np.frombuffer(prev, np.uint8).astype(np.int32)
    a = np.concatenate([np.zeros(bpp, np.int32), r[:-bpp]])[:len(r)]
    c = np.concatenate([np.zeros(bpp, np.int32), b[:-bpp]])[:len(r)]
    if f == 1:
        pred = a
    elif f == 2:
        pred = b
    elif f == 3:
        pred = (a + b) // 2
    else:
        pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return bytes([f]) + ((r - pred) & 255).astype(np.uint8).tobytes()


def rgb_of(w, h, s):
    return content(w, h, s)[..., ::-1]


def png_variants(w, h, s):
    """(kind, kwargs) for write_png from one test pattern."""
    rgb = rgb_of(w, h, s).astype(np.int64)
    gray = cv2.cvtColor(content(w, h, s), cv2.COLOR_BGR2GRAY).astype(np.int64)
    r = np.random.default_rng(s)
    alpha = r.integers(0, 256, (h, w, 1))
    big = r.integers(0, 65536, (h, w, 3))
    v = {}
    v["png-rgb8"] = dict(samples=rgb, color_type=2, depth=8)
    v["png-rgba8"] = dict(samples=np.concatenate([rgb, alpha], 2), color_type=6, depth=8)
    v["png-rgb16"] = dict(samples=rgb * 257 + r.integers(0, 256, rgb.shape), color_type=2, depth=16)
    v["png-rgba16"] = dict(samples=np.concatenate([big, alpha * 257], 2), color_type=6, depth=16)
    for d in (1, 2, 4):
        v[f"png-gray{d}"] = dict(samples=(gray >> (8 - d))[..., None], color_type=0, depth=d)
    v["png-gray8"] = dict(samples=gray[..., None], color_type=0, depth=8)
    v["png-gray16"] = dict(samples=(gray * 257 + r.integers(0, 256, gray.shape))[..., None], color_type=0, depth=16)
    v["png-graya8"] = dict(samples=np.stack([gray, alpha[..., 0]], 2), color_type=4, depth=8)
    v["png-graya16"] = dict(samples=np.stack([gray * 257, alpha[..., 0] * 257], 2), color_type=4, depth=16)
    v["png-gray8-trns"] = dict(samples=gray[..., None], color_type=0, depth=8, trns=struct.pack(">H", int(gray.flat[0])))
    v["png-rgb8-trns"] = dict(samples=rgb, color_type=2, depth=8, trns=struct.pack(">HHH", *[int(x) for x in rgb[0, 0]]))
    # palettes
    pal = r.integers(0, 256, (256, 3))
    for d in (1, 2, 4, 8):
        n = 1 << d
        idx = r.integers(0, n, (h, w, 1))
        v[f"png-palette{d}"] = dict(samples=idx, color_type=3, depth=d, plte=pal[:n])
    idx = r.integers(0, 200, (h, w, 1))
    v["png-palette8-trns"] = dict(samples=idx, color_type=3, depth=8, plte=pal[:200],
                                  trns=bytes(r.integers(0, 256, 150).astype(np.uint8)))
    v["png-palette4-short"] = dict(samples=r.integers(0, 16, (h, w, 1)), color_type=3, depth=4, plte=pal[:5])
    gpal = np.repeat(np.arange(0, 256, 17)[:, None], 3, 1)
    v["png-palette4-grey"] = dict(samples=r.integers(0, 16, (h, w, 1)), color_type=3, depth=4, plte=gpal)
    # interlaced
    v["png-interlaced-rgb8"] = dict(v["png-rgb8"], interlace=True)
    v["png-interlaced-gray4"] = dict(v["png-gray4"], interlace=True)
    v["png-interlaced-palette8"] = dict(v["png-palette8"], interlace=True)
    v["png-interlaced-rgba16"] = dict(v["png-rgba16"], interlace=True)
    # gamma / colour-space chunks (matter only for IMREAD_GRAYSCALE of colour images)
    v["png-gama45455-rgb8"] = dict(v["png-rgb8"], gama=45455)
    v["png-gama100000-rgb8"] = dict(v["png-rgb8"], gama=100000)
    v["png-gama220000-rgba8"] = dict(v["png-rgba8"], gama=220000)
    v["png-srgb-rgb8"] = dict(v["png-rgb8"], srgb=0, gama=45455)
    v["png-gama45455-palette8"] = dict(v["png-palette8"], gama=45455)
    v["png-gama45455-rgb16"] = dict(v["png-rgb16"], gama=45455)
    v["png-gama45455-sbit12-rgb16"] = dict(v["png-rgb16"], gama=45455, sbit=[12, 12, 12])
    v["png-gama45455-sbit3-rgba16"] = dict(v["png-rgba16"], gama=45455, sbit=[3, 3, 3, 16])
    v["png-gama45455-gray16"] = dict(v["png-gray16"], gama=45455)
    return v


PNG_SIZES = [(1, 1), (2, 3), (127, 129), (128, 128), (333, 500)]
for (w, h) in PNG_SIZES:
    for kind, kw in png_variants(w, h, seed).items():
        p = path_for(f"{kind}_{w}x{h}.png")
        write_png(p, **kw)
        record(p, kind)
    seed += 1
for (w, h) in [(256, 256), (512, 512), (97, 61)]:
    for kind in ("png-rgb8", "png-rgba16", "png-palette8-trns", "png-gray16"):
        kw = png_variants(w, h, seed)[kind]
        p = path_for(f"{kind}_{w}x{h}.png")
        write_png(p, **kw)
        record(p, kind)
        seed += 1
for o in range(1, 9):
    kw = png_variants(97, 61, seed)["png-rgb8"]
    p = path_for(f"png-exif-o{o}_97x61.png")
    write_png(p, exif=tiff_orientation(o, o % 2 == 0), exif_after_idat=(o == 6), **kw)
    record(p, f"png-exif-o{o}")
    seed += 1
# Pillow- and OpenCV-written PNGs
for (w, h) in [(127, 129), (640, 480)]:
    p = path_for(f"png-pillow-rgba_{w}x{h}.png")
    Image.fromarray(np.concatenate([rgb_of(w, h, seed), rng.integers(0, 256, (h, w, 1), dtype=np.uint8)], 2)).save(p)
    record(p, "png-pillow-rgba")
    p = path_for(f"png-opencv-bgr_{w}x{h}.png")
    cv2.imwrite(p, content(w, h, seed + 1))
    record(p, "png-opencv-bgr")
    seed += 2
p = path_for("png-big_4000x3000.png")
cv2.imwrite(p, content(4000, 3000, seed), [cv2.IMWRITE_PNG_COMPRESSION, 1])
record(p, "png-big")
seed += 1

# ---------------------------------------------------------------- BMP


def bmp_file(w, h, bpp, rows, palette=None, compression=0, top_down=False, header=40, masks=None):
    """rows: list of already padded (or compressed) scanline bytes in file order."""
    pix = b"".join(rows)
    pal = b""
    if palette is not None:
        if header == 12:
            pal = b"".join(bytes([b, g, r]) for (b, g, r) in palette)
        else:
            pal = b"".join(bytes([b, g, r, 0]) for (b, g, r) in palette)
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bpp)
    else:
        info = struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, 1, bpp, compression,
                           len(pix), 2835, 2835, len(palette) if palette is not None else 0, 0)
        info += bytes(header - 40)
    extra = b"".join(struct.pack("<I", m) for m in masks) if masks else b""
    off = 14 + len(info) + len(extra) + len(pal)
    return b"BM" + struct.pack("<IHHI", off + len(pix), 0, 0, off) + info + extra + pal + pix


def padded(b):
    return b + bytes((-len(b)) % 4)


def bmp_rows(img, bpp, bottom_up=True):
    """img: (h, w, 3) BGR for 16/24/32 bits, (h, w) indices for palettes."""
    h, w = img.shape[:2]
    order = range(h - 1, -1, -1) if bottom_up else range(h)
    rows = []
    for y in order:
        r = img[y]
        if bpp == 24:
            b = r.astype(np.uint8).tobytes()
        elif bpp == 32:
            b = np.concatenate([r, np.full((w, 1), 77)], 1).astype(np.uint8).tobytes()
        elif bpp in (15, 16):
            B, G, R = r[:, 0].astype(np.uint16), r[:, 1].astype(np.uint16), r[:, 2].astype(np.uint16)
            v = (B >> 3) | ((G >> 3) << 5) | ((R >> 3) << 10) if bpp == 15 else (B >> 3) | ((G >> 2) << 5) | ((R >> 3) << 11)
            b = v.astype("<u2").tobytes()
        else:
            b = bytes(pack_rows(r[None, :].astype(np.int64), bpp)[0])
        rows.append(padded(b))
    return rows


def rle8(idx_rows):
    out = b""
    for row in idx_rows:
        i = 0
        while i < len(row):
            j = i
            while j < len(row) and j - i < 255 and row[j] == row[i]:
                j += 1
            if j - i >= 3 or len(row) - i < 3:
                out += bytes([j - i, row[i]])
                i = j
            else:
                n = min(len(row) - i, 255)
                lit = bytes(row[i:i + n])
                out += bytes([0, n]) + lit + (b"\0" if n % 2 else b"")
                i += n
        out += b"\x00\x00"
    return out[:-2] + b"\x00\x01"


def rle4(idx_rows):
    out = b""
    for row in idx_rows:
        i = 0
        while i < len(row):
            n = min(len(row) - i, 254)
            if i % 3 == 0 and n >= 2:  # encoded run alternating two colours
                out += bytes([n, (row[i] << 4) | row[i + 1]])
                i += n
            else:
                n = min(len(row) - i, 40)
                if n < 3:
                    out += bytes([n, (row[i] << 4) | (row[i + 1] if n > 1 else 0)])
                else:
                    packed = bytes(((row[k] << 4) | (row[k + 1] if k + 1 < i + n else 0)) for k in range(i, i + n, 2))
                    out += bytes([0, n]) + packed + (b"\0" if len(packed) % 2 else b"")
                i += n
        out += b"\x00\x00"
    return out + b"\x00\x01"


for (w, h) in [(1, 1), (2, 3), (127, 129), (333, 500), (97, 61)]:
    bgr = content(w, h, seed)
    r = np.random.default_rng(seed)
    pal256 = [tuple(int(x) for x in r.integers(0, 256, 3)) for _ in range(256)]
    files = {}
    p = path_for(f"bmp-opencv24_{w}x{h}.bmp")
    cv2.imwrite(p, bgr)
    record(p, "bmp-opencv24")
    p = path_for(f"bmp-opencv8gray_{w}x{h}.bmp")
    cv2.imwrite(p, gray_content(w, h, seed))
    record(p, "bmp-opencv8gray")
    files["bmp-24-topdown"] = bmp_file(w, h, 24, bmp_rows(bgr, 24, False), top_down=True)
    files["bmp-32"] = bmp_file(w, h, 32, bmp_rows(bgr, 32))
    files["bmp-32-bitfields"] = bmp_file(w, h, 32, bmp_rows(bgr, 32), compression=3, masks=[0xff0000, 0xff00, 0xff])
    files["bmp-16-565"] = bmp_file(w, h, 16, bmp_rows(bgr, 16), compression=3, masks=[0xf800, 0x7e0, 0x1f])
    files["bmp-16-555"] = bmp_file(w, h, 16, bmp_rows(bgr, 15))
    files["bmp-v5-24"] = bmp_file(w, h, 24, bmp_rows(bgr, 24), header=124)
    for d in (1, 4, 8):
        n = 1 << d
        idx = r.integers(0, n, (h, w))
        files[f"bmp-palette{d}"] = bmp_file(w, h, d, bmp_rows(idx, d), palette=pal256[:n])
    idx = r.integers(0, 10, (h, w))
    files["bmp-palette8-short"] = bmp_file(w, h, 8, bmp_rows(idx, 8), palette=pal256[:6])  # indices past the palette
    files["bmp-core-palette8"] = bmp_file(w, h, 8, bmp_rows(idx, 8), palette=pal256, header=12)
    idx8 = (np.arange(w)[None, :] // 5 + np.arange(h)[:, None] // 7) % 13
    idx8[h // 2:, w // 2:] = r.integers(0, 256, (h - h // 2, w - w // 2))
    files["bmp-rle8"] = bmp_file(w, h, 8, [rle8([list(map(int, idx8[y])) for y in range(h - 1, -1, -1)])],
                                 palette=pal256, compression=1)
    idx4 = r.integers(0, 16, (h, w))
    files["bmp-rle4"] = bmp_file(w, h, 4, [rle4([list(map(int, idx4[y])) for y in range(h - 1, -1, -1)])],
                                 palette=pal256[:16], compression=2)
    for kind, data in files.items():
        p = path_for(f"{kind}_{w}x{h}.bmp")
        with open(p, "wb") as f:
            f.write(data)
        record(p, kind)
    for mode, kind in (("1", "bmp-pillow-1bit"), ("P", "bmp-pillow-palette"), ("L", "bmp-pillow-gray")):
        p = path_for(f"{kind}_{w}x{h}.bmp")
        Image.fromarray(bgr[..., ::-1]).convert(mode).save(p)
        record(p, kind)
    seed += 1

# ---------------------------------------------------------------- GIF (no OpenCV 4.10 reader)
for (w, h) in [(127, 129), (40, 30)]:
    p = path_for(f"gif_{w}x{h}.gif")
    Image.fromarray(rgb_of(w, h, seed)).convert("P").save(p)
    record(p, "gif")
    seed += 1

# ---------------------------------------------------------------- resize only
rs = os.path.join(OUT, "resize")
os.makedirs(rs, exist_ok=True)
cases = [((1, 1), (128, 128)), ((2, 3), (128, 128)), ((3, 2), (5, 7)), ((127, 129), (128, 128)),
         ((256, 256), (128, 128)), ((512, 512), (128, 128)), ((256, 128), (128, 128)), ((255, 255), (128, 128)),
         ((129, 127), (128, 128)), ((4000, 3000), (128, 128)), ((640, 480), (224, 224)), ((97, 61), (300, 200)),
         ((10, 10), (3, 3)), ((7, 5), (7, 9)), ((128, 96), (128, 128)), ((500, 333), (28, 28)), ((28, 28), (28, 28)),
         ((33, 1), (17, 40)), ((1, 50), (9, 1)), ((300, 300), (299, 301)), ((1000, 3), (128, 128))]
for i, ((sw, sh), (dw, dh)) in enumerate(cases):
    for ch in (3, 1):
        src = rng.integers(0, 256, (sh, sw, ch), dtype=np.uint8)
        if i % 2:
            src = content(sw, sh, i)[..., :ch].copy()
        name = f"resize{i}_{sw}x{sh}_to_{dw}x{dh}_c{ch}"
        np.save(os.path.join(rs, name + ".src.npy"), src)
        dst = cv2.resize(src if ch == 3 else src[..., 0], (dw, dh), 0, 0, cv2.INTER_LINEAR)
        np.save(os.path.join(rs, name + ".dst.npy"), dst)
        manifest["resize"].append({"name": name, "channels": ch, "width": dw, "height": dh})

np.save(os.path.join(OUT, "scale.npy"), tofloat(np.arange(256, dtype=np.uint8)))
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
print(f"{len(manifest['files'])} files, {len(manifest['resize'])} resize cases")
