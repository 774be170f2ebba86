#!/usr/bin/env python3
"""RSS of a running `npr serve` before, during and after a burst of large requests
(issue 27, BENCHMARKS.md "npr serve: memory after a burst"). Called by
scripts/bench_serve_memory.sh, which trains a checkpoint and starts the server.

The burst, all at once: `--large` uploads of a SIDE×SIDE noise PNG (full-size decodes and
forward passes), the issue's 130 KB PNG that decodes to 4096×4096 16-bit RGBA, and two
140 MiB garbage uploads. Prints one line per phase and the status codes."""
import argparse
import io
import threading
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def png(array, mode=None):
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, format="PNG")
    return out.getvalue()


def zeros_16bit_rgba(side):
    """A 16-bit RGBA PNG of zeros, written with PIL's zlib at level 9 via raw IHDR/IDAT."""
    import struct
    import zlib

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * (side * 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def post(url, body, results, i):
    req = urllib.request.Request(url + "api/predict", data=body, method="POST",
                                 headers={"X-NPR": "1", "Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            results[i] = r.status
    except urllib.error.HTTPError as e:
        results[i] = e.code
    except Exception as e:  # a refused body may reset the connection
        results[i] = type(e).__name__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--large", type=int, default=3)
    ap.add_argument("--idle", type=float, default=3.0, help="seconds idle before the last reading")
    a = ap.parse_args()

    rng = np.random.default_rng(0)
    small = png(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    large = png(rng.integers(0, 256, (a.side, a.side, 3), dtype=np.uint8))
    bomb = zeros_16bit_rgba(4096)
    garbage = rng.integers(0, 256, 140 << 20, dtype=np.uint8).tobytes()
    print(f"bodies: large {len(large) / 2**20:.1f} MiB ({a.side}²), 16-bit zeros {len(bomb) / 1024:.0f} KiB, "
          f"garbage 2 × {len(garbage) / 2**20:.0f} MiB")

    post(a.url, small, [None], 0)
    time.sleep(2)
    print(f"idle after one small predict: RSS {rss_mib(a.pid):.0f} MiB")

    bodies = [large] * a.large + [bomb, garbage, garbage]
    results = [None] * len(bodies)
    threads = [threading.Thread(target=post, args=(a.url, b, results, i)) for i, b in enumerate(bodies)]
    peak, start = 0.0, time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mib(a.pid))
        time.sleep(0.05)
    took = time.monotonic() - start
    print(f"burst: {took:.1f} s, peak RSS {peak:.0f} MiB, answers {results}")
    print(f"right after the burst: RSS {rss_mib(a.pid):.0f} MiB")
    time.sleep(a.idle)
    print(f"after {a.idle:.0f} s idle: RSS {rss_mib(a.pid):.0f} MiB")


if __name__ == "__main__":
    main()
