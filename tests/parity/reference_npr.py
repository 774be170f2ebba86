"""Independent PyTorch reference of the npr networks, for the parity tests.

Written from the architecture in ARCHITECTURE.md (Model) and the official NPR code
(github.com/chuangchuangtan/NPR-DeepfakeDetection, networks/resnet.py), not generated
from the Rust code. Two modes:

  reference_npr.py compare CASES_DIR   for each case, load the Rust weights
                                       (safetensors), run the input, print max |Δlogit|
  reference_npr.py official OUT_DIR    build the official NPR network with random
                                       weights, torch.save it flat and wrapped, and save
                                       an input with PyTorch's logits for the Rust side
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


def conv3x3(inp, out, stride=1):
    return nn.Conv2d(inp, out, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(inp, out, stride=1):
    return nn.Conv2d(inp, out, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


BACKBONES = {
    "npr_resnet50": (Bottleneck, [3, 4]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
}


def npr(x, s):
    """x − up_nearest(down_nearest(x, ⌊H·s⌋×⌊W·s⌋), H×W); identity at s = 1."""
    if s >= 1.0:
        return x
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, int(h * s + 1e-9)), max(1, int(w * s + 1e-9))), mode="nearest")
    return x - F.interpolate(small, size=(h, w), mode="nearest")


class Net(nn.Module):
    def __init__(self, backbone="npr_resnet50", scales=(0.5,), fusion="single", squeeze="avg",
                 reduction=2, gain=2.0 / 3.0):
        super().__init__()
        block, layers = BACKBONES[backbone]
        self.scales, self.fusion, self.squeeze, self.gain = list(scales), fusion, squeeze, gain
        k = len(self.scales)
        if fusion == "attention":
            self.scale_attention = nn.Module()
            self.scale_attention.fc1 = nn.Linear(3 * k, max(1, 3 * k // reduction))
            self.scale_attention.fc2 = nn.Linear(max(1, 3 * k // reduction), 3 * k)
        elif fusion == "learned":
            self.scale_weights = nn.Parameter(torch.zeros(k, 3))
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stages = len(layers)
        for i, n in enumerate(layers):
            setattr(self, f"layer{i + 1}", self._make_layer(block, 64 * 2**i, n, stride=1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1 = nn.Linear(self.inplanes, 1)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        b = x.shape[0]
        branches = torch.cat([npr(x, s) for s in self.scales], dim=1)  # [b, 3k, h, w]
        k = len(self.scales)
        if self.fusion == "single":
            fused = branches
        else:
            if self.fusion == "attention":
                if self.squeeze == "avg":
                    z = branches.mean(dim=(2, 3))
                elif self.squeeze == "abs_avg":
                    z = branches.abs().mean(dim=(2, 3))
                else:
                    z = (branches.pow(2).mean(dim=(2, 3)) + 1e-12).sqrt()
                w = torch.sigmoid(self.scale_attention.fc2(F.relu(self.scale_attention.fc1(z))))
            elif self.fusion == "learned":
                w = torch.sigmoid(self.scale_weights).reshape(1, 3 * k).expand(b, -1)
            else:
                w = torch.full((b, 3 * k), 1.0 / k)
            fused = (branches * w[:, :, None, None]).reshape(b, k, 3, *x.shape[-2:]).sum(dim=1)
        x = self.maxpool(self.relu(self.bn1(self.conv1(fused * self.gain))))
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc1(torch.flatten(self.avgpool(x), 1)).squeeze(1)


def compare(cases_dir):
    cases = json.load(open(f"{cases_dir}/cases.json"))
    results = []
    for case in cases:
        net = Net(case["backbone"], case["scales"], case["fusion"], case["squeeze"], case["reduction"], case["gain"])
        state = load_file(f"{cases_dir}/{case['name']}.weights.safetensors")
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.endswith("num_batches_tracked")]
        io = load_file(f"{cases_dir}/{case['name']}.io.safetensors")
        net.eval()
        with torch.no_grad():
            logits = net(io["input"])
        diff = (logits - io["logit"]).abs().max().item()
        results.append({"name": case["name"], "max_abs_diff": diff, "missing": missing, "unexpected": unexpected})
    print(json.dumps(results))


def official(out_dir):
    torch.manual_seed(0)
    net = Net("npr_resnet50", [0.5], "single")
    for name, buf in net.named_buffers():  # non-trivial BN statistics
        if name.endswith("running_mean"):
            buf.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buf.uniform_(0.5, 1.5)
    net.eval()
    state = net.state_dict()
    torch.save(state, f"{out_dir}/flat.pth")
    torch.save({"model": {"module." + k: v for k, v in state.items()}, "epoch": 3,
                "optimizer": {"state": {}, "param_groups": [{"lr": 2e-4}]}}, f"{out_dir}/wrapped.pth")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        save_file({"input": x, "logit": net(x)}, f"{out_dir}/official.io.safetensors")


if __name__ == "__main__":
    {"compare": compare, "official": official}[sys.argv[1]](sys.argv[2])
