"""Checks of run folders for scripts/slurm_check.sh (the venv's torch and safetensors).

  slurm_check.py done RUN EPOCHS [--untested]   a finished cell, trained by one writer
  slurm_check.py stopped RUN                    an interrupted cell: whole files only
  slurm_check.py same A B                       two checkpoints hold equal tensors

Each prints one line about the folder and exits 1 with the reason when a check fails.
"""
import csv
import hashlib
import json
import os
import sys

from safetensors import safe_open


def fail(msg):
    print(f"FAILED: {msg}")
    sys.exit(1)


def leftovers(run):
    """Temporary files of atomic writes and hidden staging folders under `run`."""
    found = []
    for root, dirs, files in os.walk(run):
        found += [os.path.join(root, d) for d in dirs if d.startswith(".") and "staging" in d]
        found += [os.path.join(root, f) for f in files if ".tmp-" in f]
    return found


def checkpoint(run):
    """The metadata of RUN/last.safetensors, every tensor read once (a torn file fails)."""
    path = os.path.join(run, "last.safetensors")
    if not os.path.isfile(path):
        fail(f"{path} is missing")
    try:
        with safe_open(path, "pt") as f:
            for key in f.keys():
                f.get_tensor(key)
            return f.metadata()
    except Exception as e:  # noqa: BLE001 - any error means a torn file
        fail(f"{path} does not load: {e}")


def log_rows(run):
    with open(os.path.join(run, "train_log.csv")) as f:
        return list(csv.DictReader(f))


def one_writer(run, rows):
    """Step rows numbered 1, 2, … once each: one process wrote the log (a resume drops the
    rows past its checkpoint, so even an interrupted run keeps this)."""
    steps = [int(r["step"]) for r in rows if r["kind"] == "step"]
    if steps != list(range(1, len(steps) + 1)):
        fail(f"{run}/train_log.csv: step rows are not 1..{len(steps)} once each: {steps}")
    return steps


def done(run, epochs, tested):
    meta = checkpoint(run)
    rows = log_rows(run)
    steps = one_writer(run, rows)
    ends = [int(r["epoch"]) for r in rows if r["kind"] == "epoch"]
    if ends != list(range(1, epochs + 1)):
        fail(f"{run}/train_log.csv: epoch rows {ends}, expected 1..{epochs} once each")
    if (meta["epoch"], meta["batch_in_epoch"]) != (str(epochs), "0"):
        fail(f"{run}: checkpoint at epoch {meta['epoch']} batch {meta['batch_in_epoch']}")
    if int(meta["step"]) != steps[-1]:
        fail(f"{run}: checkpoint step {meta['step']}, log ends at step {steps[-1]}")
    left = leftovers(run)
    if left:
        fail(f"{run}: left behind {left}")
    what = f"trained {epochs} epoch(s), {len(steps)} steps logged once each"
    if tested:
        marker = os.path.join(run, "test", "complete.json")
        if not os.path.isfile(marker):
            fail(f"{marker} is missing: the cell was not tested")
        with open(marker) as f:
            complete = json.load(f)
        with open(os.path.join(run, "last.safetensors"), "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        if complete["checkpoint_sha256"] != sha:
            fail(f"{marker} names other weights than {run}/last.safetensors")
        what += ", tested (test/complete.json names these weights)"
    print(f"{os.path.basename(run)}: {what}")


def stopped(run):
    meta = checkpoint(run)
    steps = one_writer(run, log_rows(run))
    left = leftovers(run)
    if left:
        fail(f"{run}: left behind {left}")
    if os.path.exists(os.path.join(run, "test")):
        fail(f"{run}: has a test folder although training did not finish")
    print(
        f"{os.path.basename(run)}: stopped with a whole checkpoint at step {meta['step']} "
        f"({meta['epoch']} epoch(s) and {meta['batch_in_epoch']} batch(es) done), "
        f"{len(steps)} steps logged, no temporary file, no test folder"
    )


def same(a, b):
    with safe_open(a, "pt") as fa, safe_open(b, "pt") as fb:
        ka, kb = sorted(fa.keys()), sorted(fb.keys())
        if ka != kb:
            fail(f"{a} and {b} hold different tensors")
        for k in ka:
            ta, tb = fa.get_tensor(k), fb.get_tensor(k)
            if ta.dtype != tb.dtype or ta.shape != tb.shape or not bool((ta == tb).all()):
                fail(f"{k} differs between {a} and {b}")
    print(f"equal: all {len(ka)} tensors (model and optimizer state) of {a} and {b}")


def main(argv):
    if len(argv) >= 3 and argv[0] == "done":
        done(argv[1], int(argv[2]), "--untested" not in argv[3:])
    elif len(argv) == 2 and argv[0] == "stopped":
        stopped(argv[1])
    elif len(argv) == 3 and argv[0] == "same":
        same(argv[1], argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
