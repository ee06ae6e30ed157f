#!/usr/bin/env python3
"""Run PyTorch (torch.nn.functional, torchvision.ops.sigmoid_focal_loss) on the
conformance vectors and write results in the `entropic check` format.

    pip install torch torchvision numpy
    python3 verification/adapters/torch_adapter.py --dtype f32 > torch-f32.jsonl
    entropic check torch-f32.jsonl --against verification/vectors/ --dtype f32

Cases whose loss PyTorch has no function for (bi-tempered, softmax focal)
are skipped and show as "missing" in the check; options PyTorch does not
have (per-column BCE weight broadcasting is native) are mapped as documented
inline. Gradients come from autograd of the reduced loss (of the sum for
reduction "none"), as entropic defines them.
"""

import argparse
import glob
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

try:
    from torchvision.ops import sigmoid_focal_loss
except Exception:  # torchvision is optional
    sigmoid_focal_loss = None


def num(v):
    if isinstance(v, str):
        return {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}[v]
    return v


def tensor(rows, dtype):
    return torch.tensor([[num(x) for x in r] for r in rows], dtype=dtype)


def out(x):
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def run(case, dtype):
    loss, p = case["loss"], case.get("params", {})
    red = p.get("reduction", "mean")
    z = tensor(case["logits"], dtype).requires_grad_(True)
    if loss == "softmax_cross_entropy":
        t = case["target"]
        kw = dict(label_smoothing=p.get("label_smoothing", 0.0))
        if "weight" in p:
            kw["weight"] = torch.tensor(p["weight"], dtype=dtype)
        if isinstance(t[0], list):
            target = tensor(t, dtype)
        else:
            target = torch.tensor(t, dtype=torch.long)
            kw["ignore_index"] = p.get("ignore_index", -100)
        per = F.cross_entropy(z, target, reduction="none", **kw)
        red_loss = F.cross_entropy(z, target, reduction=red, **kw) if red != "none" else per.sum()
    elif loss == "binary_cross_entropy_with_logits":
        y = tensor(case["target"], dtype)
        kw = {}
        if "weight" in p:
            kw["weight"] = torch.tensor(p["weight"], dtype=dtype)
        if "pos_weight" in p:
            kw["pos_weight"] = torch.tensor(p["pos_weight"], dtype=dtype)
        per = F.binary_cross_entropy_with_logits(z, y, reduction="none", **kw).flatten()
        red_loss = F.binary_cross_entropy_with_logits(z, y, reduction=red, **kw) if red != "none" else per.sum()
    elif loss == "kl_div":
        y = tensor(case["target"], dtype)
        lt = p.get("log_target", False)
        per = F.kl_div(z, y, reduction="none", log_target=lt).flatten()
        red_loss = F.kl_div(z, y, reduction=red, log_target=lt) if red != "none" else per.sum()
    elif loss == "sigmoid_focal_loss" and sigmoid_focal_loss is not None:
        y = tensor(case["target"], dtype)
        a, g = p.get("alpha", 0.25), p.get("gamma", 2.0)
        red = p.get("reduction", "none")
        per = sigmoid_focal_loss(z, y, alpha=a, gamma=g, reduction="none").flatten()
        red_loss = sigmoid_focal_loss(z, y, alpha=a, gamma=g, reduction=red) if red != "none" else per.sum()
    else:
        return None
    red_loss.backward()
    return {
        "id": case["id"],
        "per_sample": [out(v) for v in per.detach().tolist()],
        "loss": None if red == "none" else out(red_loss.item()),
        "grad": [[out(v) for v in row] for row in z.grad.tolist()],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", default=os.path.join(os.path.dirname(__file__), "..", "vectors"))
    ap.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    args = ap.parse_args()
    dtype = torch.float32 if args.dtype == "f32" else torch.float64
    for path in sorted(glob.glob(os.path.join(args.vectors, "*.jsonl"))):
        for line in open(path):
            case = json.loads(line)
            try:
                r = run(case, dtype)
            except Exception as e:  # report, never skip silently
                r = {"id": case["id"], "error": f"{type(e).__name__}: {e}"}
            if r is not None:
                print(json.dumps(r))
    print(f"torch {torch.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
