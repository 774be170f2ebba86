"""Independent NumPy reference of a TF.js layers model's forward pass, for the golden test
of src/upsample (tests/it/upsample.rs).

Written from the TF.js / Keras definitions, not from the Rust code: it works in NHWC as
Keras does, reads the kernels in their stored [kh, kw, c_in, c_out] layout, pads 'same'
convolutions by TensorFlow's rule (out = ceil(n / stride), odd pixel after) and accumulates
in float64. Custom layers as UpscalerJS's esrgan.ts defines them: MultiplyBeta is
x * beta, PixelShuffle{r}x is tf.depthToSpace(x, r, 'NHWC').

  reference_esrgan.py CASES_JSON   for each case {model_dir, white, h, w, input, output}:
                                   run the uint8 HxWx3 input (scaled by white/255) through
                                   the model, scale back by 255/white, and print one JSON
                                   line {"case", "max_abs"}: the largest |difference| from
                                   the Rust output (float32, NCHW, 0-255 units).
"""
import json
import os
import sys

import numpy as np


def load(model_dir):
    model = json.load(open(os.path.join(model_dir, "model.json")))
    weights = {}
    for group in model["weightsManifest"]:
        buf = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            assert w["dtype"] == "float32", w
            n = int(np.prod(w["shape"]))
            weights[w["name"]] = np.frombuffer(buf, "<f4", n, offset).reshape(w["shape"]).astype(np.float64)
            offset += 4 * n
        assert offset == len(buf)
    return model["modelTopology"]["model_config"]["config"], weights


def same_pads(n, k, stride, dilation):
    out = -(-n // stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - n, 0)
    return total // 2, total - total // 2


def conv2d(x, kernel, bias, cfg):
    """x: [h, w, c_in]; kernel: [kh, kw, c_in, c_out]."""
    kh, kw = cfg["kernel_size"]
    sh, sw = cfg["strides"]
    dh, dw = cfg["dilation_rate"]
    assert cfg.get("groups", 1) == 1 and cfg["data_format"] == "channels_last"
    if cfg["padding"] == "same":
        x = np.pad(x, (same_pads(x.shape[0], kh, sh, dh), same_pads(x.shape[1], kw, sw, dw), (0, 0)))
    else:
        assert cfg["padding"] == "valid"
    h, w = x.shape[:2]
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (w - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((oh, ow, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            tap = x[i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw]
            out += tap @ kernel[i, j]
    if cfg["use_bias"]:
        out += bias
    if cfg["activation"] == "relu":
        out = np.maximum(out, 0)
    else:
        assert cfg["activation"] == "linear"
    return out


def forward(graph, weights, image):
    values = {}
    for layer in graph["layers"]:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        args = [values[src[0]] for src in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if kind == "InputLayer":
            y = image
        elif kind == "Conv2D":
            y = conv2d(args[0], weights[name + "/kernel"], weights.get(name + "/bias"), cfg)
        elif kind == "Activation":
            y = np.maximum(args[0], 0) if cfg["activation"] == "relu" else args[0]
        elif kind == "Concatenate":
            y = np.concatenate(args, axis=-1)
        elif kind == "Add":
            y = sum(args)
        elif kind == "UpSampling2D":
            assert cfg.get("interpolation", "nearest") == "nearest"
            y = args[0].repeat(cfg["size"][0], axis=0).repeat(cfg["size"][1], axis=1)
        elif kind == "MultiplyBeta":
            y = args[0] * cfg["beta"]
        elif kind.startswith("PixelShuffle"):
            r = cfg["scale"]
            h, w, c = args[0].shape
            # depthToSpace NHWC: out[h*r + i, w*r + j, c] = in[h, w, (i*r + j)*C + c]
            y = args[0].reshape(h, w, r, r, c // (r * r)).transpose(0, 2, 1, 3, 4).reshape(h * r, w * r, c // (r * r))
        else:
            raise SystemExit(f"reference_esrgan.py: layer type {kind} not implemented")
        values[name] = y
    return values[graph["output_layers"][0][0]]


def main():
    cases_path = sys.argv[1]
    root = os.path.dirname(cases_path)
    for k, case in enumerate(json.load(open(cases_path))):
        graph, weights = load(case["model_dir"])
        h, w = case["h"], case["w"]
        image = np.fromfile(os.path.join(root, case["input"]), np.uint8).reshape(h, w, 3).astype(np.float64)
        gain = case["white"] / 255.0
        ours = forward(graph, weights, image * gain) / gain  # [H, W, 3]
        rust = np.fromfile(os.path.join(root, case["output"]), "<f4").reshape(3, ours.shape[0], ours.shape[1])
        diff = np.abs(ours.transpose(2, 0, 1) - rust.astype(np.float64)).max()
        print(json.dumps({"case": k, "max_abs": float(diff)}))


if __name__ == "__main__":
    main()
