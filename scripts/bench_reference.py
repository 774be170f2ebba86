#!/usr/bin/env python3
"""PyTorch reference pipelines for `npr bench --dataroot` (issue 13, BENCHMARKS.md).

Both sides read the same PNG files from disk; `scripts/bench_compare.sh` runs them one
after the other and prints the ratios.

  train   the official NPR training input: an ImageFolder-like dataset, PIL decoding,
          torchvision Resize((L, L)) / RandomCrop(C) / RandomHorizontalFlip / ToTensor /
          Normalize, a DataLoader with --workers processes (default: every core), then
          the official network (truncated ResNet-50, NPR at 0.5; tests/parity/
          reference_npr.py), BCE-with-logits, Adam(2e-4, (0.9, 0.999)); on CUDA with
          pinned memory, non-blocking copies, channels-last and, with --amp, bf16 autocast.
  test    the official `validate()` loop: the same dataset without augmentation (no resize,
          no crop: the images as they are), model.eval(), no_grad, sigmoid, scores moved
          to the host per batch, as the official code collects them.

Prints `reference train images/s: X (…)` and `reference test images/s: X (…)`; the
first --warmup batches are not timed (CUDA context, cuDNN autotuning, worker start-up).

    .venv/bin/python scripts/bench_reference.py --dataroot DIR --mode both --device cpu \
        --batch-size 32 --load-size 256 --crop-size 224 --images 512
"""

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
from bench_loader import MEAN, STD, Files, find_images, make_transform  # noqa: E402
from reference_npr import Net  # noqa: E402


def eval_transform():
    try:
        import torchvision.transforms as T

        return T.Compose([T.ToTensor(), T.Normalize(mean=MEAN, std=STD)])
    except ImportError:
        import numpy as np

        mean = torch.tensor(MEAN).view(3, 1, 1)
        std = torch.tensor(STD).view(3, 1, 1)

        def by_hand(img):
            x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
            return (x.float().div(255) - mean) / std

        return by_hand


def timed_loop(loader, step, warmup, device):
    """Runs `step(x, y)` over the loader; images/s after the first `warmup` batches."""
    seen, start = 0, None
    for i, (x, y) in enumerate(loader):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, seen = time.perf_counter(), 0
        step(x, y)
        seen += x.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    if start is None:
        raise SystemExit(f"only {i + 1} batches: raise --images above {warmup} batches")
    return seen / (time.perf_counter() - start), seen


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot", required=True)
    p.add_argument("--mode", choices=["train", "test", "both"], default="both")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--load-size", type=int, default=256)
    p.add_argument("--crop-size", type=int, default=224)
    p.add_argument("--images", type=int, default=0, help="images per mode (cycling); 0 = all once")
    p.add_argument("--warmup", type=int, default=3, help="batches not timed")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    a = p.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    items = find_images(a.dataroot)
    if not items:
        print(f"no images under label folders (0_real/1_fake, real/fake, nature/ai) in {a.dataroot}",
              file=sys.stderr)
        return 2
    n = a.images if a.images > 0 else len(items)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = Net().to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.amp and cuda)
    common = dict(batch_size=a.batch_size, num_workers=a.workers, pin_memory=cuda,
                  persistent_workers=False)
    what = f"{device}, batch {a.batch_size}, {a.workers} workers, torch threads {torch.get_num_threads()}, " + \
        ("bf16 autocast" if a.amp and cuda else "fp32")

    if a.mode in ("train", "both"):
        _, transform = make_transform(a.load_size, a.crop_size)
        loader = torch.utils.data.DataLoader(Files(items, n, transform), shuffle=True, drop_last=True, **common)
        opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.999))
        model.train()

        def train_step(x, y):
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True).float()
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with amp:
                loss = F.binary_cross_entropy_with_logits(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        ips, seen = timed_loop(loader, train_step, a.warmup, device)
        print(f"reference train images/s: {ips:.1f} ({seen} timed images, {a.load_size}->{a.crop_size} px, {what})")

    if a.mode in ("test", "both"):
        loader = torch.utils.data.DataLoader(Files(items, n, eval_transform()), shuffle=False, **common)
        model.eval()
        scores = []

        def test_step(x, y):
            with torch.no_grad(), amp:
                x = x.to(device, non_blocking=True)
                if cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                scores.extend(model(x).sigmoid().flatten().float().tolist())

        ips, seen = timed_loop(loader, test_step, a.warmup, device)
        print(f"reference test images/s: {ips:.1f} ({seen} timed images, full size, {what})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
