"""Writes the manifest of what scripts/get_photos.sh keeps (called by it).

  photos_manifest.py photos LIST DIR       DIR/manifest.tsv: one row per photograph present
  photos_manifest.py upsamplers LIST DIR   DIR/manifest.tsv: one row per file present

A photograph's row: name, source, version, licence, scene, sha256, width, height, mode,
bytes, format and, for a JPEG, the quality estimated from its quantization tables (the IJG
quality whose scaled Annex K tables are nearest; `jpeg_tables` says `ijg` when they match
exactly, `custom` when the encoder used its own tables and the quality is only the nearest),
the chroma subsampling, and the camera named in the EXIF. An up-sampler file's row: name,
source, version, licence, sha256, bytes and, for a model.json, its scale, parameter count and
layer types. Files of the list that are absent (not fetched in this mode) are left out.
"""
import collections
import csv
import hashlib
import json
import math
import os
import sys

from PIL import Image, JpegImagePlugin

# ITU-T T.81 Annex K tables in natural (row-major) order, as Pillow reports them.
LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
          24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def ijg_table(base, quality):
    """libjpeg's jpeg_quality_scaling and jpeg_add_quant_table (force_baseline)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(max((v * scale + 50) // 100, 1), 255) for v in base]


def jpeg_quality(im):
    """(quality, 'ijg' | 'custom'): the IJG quality whose tables are nearest (L1)."""
    tables = im.quantization
    best = None
    for q in range(1, 101):
        err = sum(abs(a - b) for a, b in zip(ijg_table(LUMA, q), tables[0]))
        if 1 in tables:
            err += sum(abs(a - b) for a, b in zip(ijg_table(CHROMA, q), tables[1]))
        if best is None or err < best[0]:
            best = (err, q)
    return best[1], "ijg" if best[0] == 0 else "custom"


def camera(im):
    exif = im.getexif()
    make, model = exif.get(271, ""), exif.get(272, "")
    name = " ".join(s.strip().strip("\x00") for s in (make, model) if s and s.strip())
    return name


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_list(path):
    lines = [line for line in open(path, encoding="utf-8") if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


def photo_row(path):
    with Image.open(path) as im:
        out = {
            "width": im.width, "height": im.height, "mode": im.mode, "format": im.format,
            "jpeg_quality": "", "jpeg_tables": "", "jpeg_subsampling": "", "camera": "",
        }
        if im.format == "JPEG":
            q, kind = jpeg_quality(im)
            out["jpeg_quality"], out["jpeg_tables"] = q, kind
            out["jpeg_subsampling"] = SUBSAMPLING.get(JpegImagePlugin.get_sampling(im), "none")
        out["camera"] = camera(im)
    return out


def model_row(path):
    model = json.load(open(path))
    layers = model["modelTopology"]["model_config"]["config"]["layers"]
    counts = collections.Counter(layer["class_name"] for layer in layers)
    params = sum(math.prod(w["shape"])
                 for group in model["weightsManifest"] for w in group["weights"])
    scale = os.path.basename(os.path.dirname(path)).lstrip("x")
    return {"scale": scale, "parameters": params,
            "layers": " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))}


def main():
    kind, list_path, folder = sys.argv[1:4]
    rows = read_list(list_path)
    out = []
    for row in rows:
        path = os.path.join(folder, row["name"])
        if not os.path.isfile(path):
            continue
        base = {"name": row["name"], "source": row["source"], "version": row["version"],
                "licence": row["licence"]}
        if kind == "photos":
            if row["scene"] == "-":
                continue
            base["scene"] = row["scene"]
            base["sha256"] = sha256(path)
            base.update(photo_row(path))
        else:
            base["sha256"] = sha256(path)
            extra = model_row(path) if row["name"].endswith("model.json") else {}
            base.update({"scale": "", "parameters": "", "layers": ""} | extra)
        base["bytes"] = os.path.getsize(path)
        out.append(base)
    target = os.path.join(folder, "manifest.tsv")
    tmp = target + ".part"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        if out:
            w = csv.DictWriter(f, fieldnames=list(out[0]), delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(out)
    os.replace(tmp, target)
    print(f"get_photos: {len(out)} {'photographs' if kind == 'photos' else 'files'} in {target}")


if __name__ == "__main__":
    main()
