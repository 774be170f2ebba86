#!/usr/bin/env python3
"""PyTorch reference for `npr bench --loader` (figures in BENCHMARKS.md).

The official NPR training input pipeline: an ImageFolder-like dataset over the same
files, PIL decoding (`Image.open(p).convert("RGB")`), torchvision `Resize((L, L))`,
`RandomCrop(C)`, `RandomHorizontalFlip()`, `ToTensor()`, `Normalize(ImageNet)`, and a
`DataLoader` with N worker processes. Prints `torch images/s: X`.

If torchvision is not installed, the same transforms are applied by hand with PIL and
torch (PIL's bilinear resize is what torchvision calls on PIL images).

Also writes the benchmark images: `--make-images DIR --count N` creates N 256×256 PNGs
with natural-looking content (1/f noise, gradients, soft shapes) under DIR/{0_real,1_fake}.

    .venv/bin/python scripts/bench_loader.py --dataroot DIR --workers 2 --batch-size 32 \
        --load-size 256 --crop-size 224 --images 2000
"""

import argparse
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image

LABELS = {"0_real": 0, "real": 0, "nature": 0, "1_fake": 1, "fake": 1, "ai": 1}
EXTENSIONS = (".png", ".jpg", ".jpeg")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def find_images(root):
    """(path, label) for every image below a label folder, sorted like `npr`."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        parts = os.path.relpath(dirpath, root).split(os.sep)
        labels = [LABELS[p.lower()] for p in parts if p.lower() in LABELS]
        if not labels:
            continue
        for f in sorted(filenames):
            if f.lower().endswith(EXTENSIONS):
                found.append((os.path.join(dirpath, f), labels[-1]))
    found.sort()
    return found


def make_transform(load, crop):
    try:
        import torchvision.transforms as T

        return "torchvision", T.Compose([
            T.Resize((load, load)),
            T.RandomCrop(crop),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean=MEAN, std=STD),
        ])
    except ImportError:
        mean = torch.tensor(MEAN).view(3, 1, 1)
        std = torch.tensor(STD).view(3, 1, 1)

        def by_hand(img):
            if img.size != (load, load):
                img = img.resize((load, load), Image.BILINEAR)
            top, left = random.randint(0, load - crop), random.randint(0, load - crop)
            img = img.crop((left, top, left + crop, top + crop))
            if random.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
            return (x.float().div(255) - mean) / std

        return "hand-written PIL+torch", by_hand


class Files(torch.utils.data.Dataset):
    def __init__(self, items, n, transform):
        self.items, self.n, self.transform = items, n, transform

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        path, label = self.items[i % len(self.items)]
        with open(path, "rb") as f:
            img = Image.open(f).convert("RGB")
        return self.transform(img), label


def natural_image(rng, size):
    """1/f colour noise + gradient + a few soft discs, uint8 size×size×3."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.fftfreq(size)[None, :]
    amp = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / size) ** 1.4
    chans = []
    for _ in range(3):
        spec = amp * np.exp(2j * np.pi * rng.random((size, size)))
        chans.append(np.real(np.fft.ifft2(spec)))
    img = np.stack(chans, -1)
    img = (img - img.mean()) / (img.std() + 1e-9) * 40 + 120
    yy, xx = np.mgrid[0:size, 0:size]
    img += (xx / size * rng.uniform(-40, 40))[..., None]
    for _ in range(rng.integers(2, 6)):
        cy, cx, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(size / 12, size / 4)]
        mask = 1 / (1 + np.exp((np.hypot(yy - cy, xx - cx) - r) / 2.0))
        img = img * (1 - mask[..., None]) + rng.uniform(0, 255, 3) * mask[..., None]
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_images(root, count, size, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(count):
        label = "0_real" if i % 2 == 0 else "1_fake"
        os.makedirs(os.path.join(root, label), exist_ok=True)
        Image.fromarray(natural_image(rng, size)).save(os.path.join(root, label, f"{i:06d}.png"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--load-size", type=int, default=256)
    p.add_argument("--crop-size", type=int, default=224)
    p.add_argument("--images", type=int, default=0, help="images to load (cycling); 0 = all once")
    p.add_argument("--make-images", metavar="DIR", help="write benchmark PNGs to DIR and exit")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--size", type=int, default=256)
    a = p.parse_args()

    if a.make_images:
        make_images(a.make_images, a.count, a.size)
        print(f"wrote {a.count} {a.size}x{a.size} PNGs under {a.make_images}")
        return 0
    if not a.dataroot:
        p.error("--dataroot is required (or --make-images DIR)")
    items = find_images(a.dataroot)
    if not items:
        print(f"no images under label folders (0_real/1_fake, real/fake, nature/ai) in {a.dataroot}",
              file=sys.stderr)
        return 2
    n = a.images if a.images > 0 else len(items)
    kind, transform = make_transform(a.load_size, a.crop_size)
    loader = torch.utils.data.DataLoader(
        Files(items, n, transform), batch_size=a.batch_size, shuffle=True, num_workers=a.workers)
    start = time.perf_counter()
    seen = 0
    for x, _ in loader:
        seen += x.shape[0]
    seconds = time.perf_counter() - start
    print(f"torch images/s: {seen / seconds:.1f} ({seen} images, {seconds:.2f} s, {a.workers} workers, "
          f"batch {a.batch_size}, {kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
