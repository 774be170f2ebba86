"""torch.optim.Adam on the parameters and gradients the Rust test saved; prints the
max |Δ| between PyTorch's parameters and ours after every step (JSON)."""
import json
import sys

import torch
from safetensors.torch import load_file

d = load_file(sys.argv[1])
cfg = json.loads(sys.argv[2])
names = sorted({k.split(".", 1)[1] for k in d if k.startswith("init.")})
params = [torch.nn.Parameter(d[f"init.{n}"].clone()) for n in names]
opt = torch.optim.Adam(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"],
                       weight_decay=cfg["weight_decay"])
diffs = []
for step in range(cfg["steps"]):
    opt.zero_grad()
    for p, n in zip(params, names):
        p.grad = d[f"grad{step}.{n}"].clone()
    opt.step()
    diffs.append(max((p.detach() - d[f"ours{step}.{n}"]).abs().max().item() for p, n in zip(params, names)))
print(json.dumps(diffs))
