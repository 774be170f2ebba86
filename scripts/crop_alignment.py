"""Mean |NPR| per branch against the crop offset (README_ATTENTION.md, "What the control
found"): does a random training crop keep a nearest-up-sampled fake's trace in its
true-scale branch?

Nearest ×f makes constant f×f blocks starting at pixel 0. NPR at 1/f compares each pixel
with the first pixel of its own f×f cell, so the block content cancels only when the crop
starts on a multiple of f. This script crops the training images of the multiscale
benchmark at offsets 0, 1, 2, … (the same offset in x and y), computes NPR at every scale
in PyTorch (independently of the Rust code, with the same nearest interpolation and ImageNet
normalisation), and prints the mean |residual| of reals and of each seen family's fakes.

    .venv/bin/python scripts/crop_alignment.py datasets/synth_multiscale --crop 56
"""
import argparse
import glob
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
SCALES = [0.25, 0.5, 0.75]


def load(paths):
    x = torch.stack(
        [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in paths]
    )
    return (x.float() / 255 - MEAN) / STD


def npr(x, s):
    h, w = x.shape[-2:]
    down = F.interpolate(x, size=(int(h * s + 1e-9), int(w * s + 1e-9)), mode="nearest")
    return x - F.interpolate(down, size=(h, w), mode="nearest")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", help="a multiscale benchmark (npr synth --preset multiscale)")
    ap.add_argument("--crop", type=int, default=56, help="crop side (the config's crop_size)")
    ap.add_argument("--offsets", default="0,1,2,3,4", help="crop offsets, comma-separated")
    ap.add_argument("--n", type=int, default=200, help="images per group")
    args = ap.parse_args()
    train = os.path.join(args.root, "train")
    groups = {"real": sorted(glob.glob(f"{train}/*/0_real/*.png"))[: args.n]}
    for family in ["nearest_x2", "nearest_x4"]:
        groups[family] = sorted(glob.glob(f"{train}/*/1_fake/*_{family}.png"))[: args.n]
    images = {g: load(p) for g, p in groups.items() if p}
    print("| offset | group | n | " + " | ".join(f"mean abs NPR {s}" for s in SCALES) + " |")
    print("| ---: | --- | ---: |" + " ---: |" * len(SCALES))
    for off in map(int, args.offsets.split(",")):
        for group, x in images.items():
            x = x[:, :, off : off + args.crop, off : off + args.crop]
            e = [npr(x, s).abs().mean().item() for s in SCALES]
            print(f"| {off} | {group} | {len(x)} | " + " | ".join(f"{v:.3f}" for v in e) + " |")


if __name__ == "__main__":
    main()
