#!/usr/bin/env python3
"""The cost of starting `npr train` on a large data set (issue 31, BENCHMARKS.md "Starting
on a large data set"): discovery, the split check on a first start (every hash read) and a
second start (hashes from DATAROOT/.npr-split-hashes.csv), time to the first training
step and the peak resident memory up to it. Called by scripts/bench_split_check.sh.

Two layouts, ForenSynths-like (20 classes × 0_real/1_fake, validation 10 %):
- `linked`: --files hard links to a pool of distinct 32-px noise PNGs (≈ 3.2 KB, so every
  size occurs in both splits and every file is compared by content, as on real data);
- `distinct`: --cold-files distinct files of ≈ 100 KB (a 32-px PNG carrying a private
  ancillary chunk of random bytes; sizes again shared by both splits), each start after
  `sync` and dropping the page cache (`/proc/sys/vm/drop_caches`, root only; otherwise
  the start is marked warm).

Times are from the spawn of `npr train` to the line on stderr that ends each stage:
"training set (" (discovery), "train: N images" (the split check, from the end of
discovery; the check's own line, printed too, says what it read), "epoch 1 step" (the
first step, logged with log_every=1); the peak is VmHWM read at that line, then the
process is killed. `--before BIN` starts another binary once more (e.g. one built
before issue 31, which prints no split-check line)."""
import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

CLASSES = 20
LABELS = ("0_real", "1_fake")


def png(width, seed, extra=b""):
    """A noise PNG (RGB, width²), with an optional private ancillary chunk `prVt`."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(width))

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, width, 8, 2, 0, 0, 0)
    parts = [chunk(b"IHDR", ihdr), chunk(b"IDAT", zlib.compress(rows, 6))]
    if extra:
        parts.append(chunk(b"prVt", extra))
    return b"\x89PNG\r\n\x1a\n" + b"".join(parts) + chunk(b"IEND", b"")


def places(root, n):
    """`n` file paths, 90 % under train/, 10 % under val/, spread over classes and labels."""
    n_val = n // 10
    for i in range(n):
        split, j = ("val", i - (n - n_val)) if i >= n - n_val else ("train", i)
        folder = root / split / f"class{j % CLASSES:02d}" / LABELS[(j // CLASSES) % 2]
        yield split, folder / f"{j:07d}.png"


def build_linked(root, pool, n):
    """Hard links to 2,000 training and 200 validation sources (distinct bytes)."""
    sources = {"train": [], "val": []}
    for split, count, base in (("train", 2000, 0), ("val", 200, 10**6)):
        (pool / split).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            p = pool / split / f"{k}.png"
            p.write_bytes(png(32, base + k))
            sources[split].append(p)
    made = set()
    for i, (split, path) in enumerate(places(root, n)):
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        os.link(sources[split][i % len(sources[split])], path)


def build_distinct(root, n):
    """Distinct files of ≈ 100 KB: one image, a unique chunk (index + random block slice)."""
    block = random.Random(7).randbytes(1 << 20)
    made = set()
    for i, (_, path) in enumerate(places(root, n)):
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        size = 96_000 + i % 200  # shared by both splits
        start = (i * 7919) % (len(block) - size)
        path.write_bytes(png(32, 1, struct.pack(">Q", i) + block[start:start + size]))


def config(work, root):
    path = work / f"{root.name}.yaml"
    path.write_text(
        "name: split_bench\n"
        "model: { backbone: npr_resnet50, fusion: single, scales: [0.5] }\n"
        f"data: {{ dataroot: {root}, load_size: 32, crop_size: 28, workers: 2 }}\n"
        "train: { epochs: 1, batch_size: 32, log_every: 1, seed: 0 }\n"
        "test: { batch_size: 64, sets: [] }\n")
    return path


def drop_caches():
    """True when the page cache (and dentries, inodes) could be dropped."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError as e:
        print(f"  (page cache not dropped: {e}; this start is warm)")
        return False


def vm_hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start(npr, cfg, out, cold):
    """One start of `npr train`, killed at its first step: the stage times and peak."""
    was_cold = drop_caches() if cold else False
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [npr, "train", "--config", str(cfg), "--out", str(out), "--overwrite", "--device", "cpu"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    got = {"cold": was_cold}
    log = []
    for line in proc.stderr:
        t = time.monotonic() - t0
        log.append(line.rstrip())
        if line.startswith("training set (") and "discovery" not in got:
            got["discovery"] = t
        elif line.startswith("split check:") and "files," in line:
            got["check_line"] = line.strip()
        elif line.startswith("train: ") and "check" not in got:
            got["check"] = t - got.get("discovery", t)
        elif line.startswith("epoch 1 step"):
            got["first_step"] = t
            got["peak_mb"] = vm_hwm_mb(proc.pid)
            proc.kill()
            break
    proc.wait()
    if "first_step" not in got:
        sys.exit("npr train ended before its first step:\n" + "\n".join(log[-20:]))
    return got


def bench(npr, work, root, label, cold, before):
    cfg = config(work, root)
    cache = root / ".npr-split-hashes.csv"
    rows = []
    runs = [("first start", npr), ("second start", npr)]
    if before:
        runs.append(("before issue 31", before))
    for name, binary in runs:
        if name == "first start":
            cache.unlink(missing_ok=True)
        got = start(binary, cfg, work / "run", cold)
        rows.append((label, name, got))
        print(f"  {name}: {got.get('check_line', '(no split check line)')}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--npr", default="target/release/npr")
    ap.add_argument("--work", default="/tmp/npr_split_bench")
    ap.add_argument("--files", type=int, default=220_000, help="0: skip the layout")
    ap.add_argument("--cold-files", type=int, default=50_000, help="0: skip the layout")
    ap.add_argument("--before", help="another npr binary to start once more (e.g. main's)")
    ap.add_argument("--keep", action="store_true", help="keep the layouts")
    a = ap.parse_args()
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print("load before:", os.getloadavg())
    rows = []
    try:
        layouts = [("linked", a.files, False), ("distinct", a.cold_files, True)]
        layouts = [(name, n, cold) for name, n, cold in layouts if n > 0]
        for name, n, cold in layouts:
            root = work / name
            t = time.monotonic()
            if name == "linked":
                build_linked(root, work / "pool", n)
            else:
                build_distinct(root, n)
            time.sleep(3)  # older than the check's 2 s window for files still being written
            print(f"{name}: {n} files written in {time.monotonic() - t:.0f} s")
            label = f"{n // 1000}k {'hard links, warm' if not cold else 'distinct ≈ 100 KB, cold'}"
            rows += bench(a.npr, work, root, label, cold, a.before)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("load after:", os.getloadavg())
    print("\n| files (train+val) | start | discovery | split check | first training step | peak memory |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for label, name, g in rows:
        warm = "" if g["cold"] or "cold" not in label else " (cache not dropped)"
        print(f"| {label} | {name}{warm} | {g['discovery']:.2f} s | {g['check']:.2f} s "
              f"| {g['first_step']:.2f} s | {g['peak_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
