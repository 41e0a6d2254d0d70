#!/usr/bin/env python3
"""The world model's network in PyTorch (CPU), for the benchmark in BENCHMARKS.md.

Loads the same swm-model/1 safetensors file (parsed by hand: 8-byte header length, JSON
header, raw little-endian f32), runs the same forward pass (neighbour MLP, masked max-pool,
trunk, vehicle head) on the same feature batches that `bench_model` wrote, checks the
logits against the Rust ones and times it on one thread.

    python3 scripts/bench_model_torch.py MODEL.safetensors BENCH_DIR
"""
import json
import struct
import sys
import time

import torch

EGO, NBR, NBR_DIM = 90, 8, 14


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    assert meta.get("format") == "swm-model/1", meta.get("format")
    data = raw[8 + n :]
    tensors = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(info["shape"])
        tensors[name] = t
    return tensors


class Net(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        w = self.w
        b = x.shape[0]
        ego = x[:, :EGO]
        nbr = x[:, EGO:].reshape(b * NBR, NBR_DIM)
        mask = nbr[:, NBR_DIM - 1 :]
        h = torch.relu(torch.nn.functional.linear(nbr, w["nbr.0.weight"], w["nbr.0.bias"]))
        h = torch.relu(torch.nn.functional.linear(h, w["nbr.1.weight"], w["nbr.1.bias"]))
        h = (h * mask).reshape(b, NBR, -1).amax(dim=1)
        z = torch.cat([ego, h], dim=1)
        z = torch.relu(torch.nn.functional.linear(z, w["trunk.0.weight"], w["trunk.0.bias"]))
        z = torch.relu(torch.nn.functional.linear(z, w["trunk.1.weight"], w["trunk.1.bias"]))
        return torch.nn.functional.linear(z, w["head_vehicle.weight"], w["head_vehicle.bias"])


def main():
    model, bench = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    net = Net(load(model)).eval()
    results = {"torch": torch.__version__, "threads": 1, "forward": []}
    for batch in (64, 256, 1024):
        x = torch.frombuffer(bytearray(open(f"{bench}/features-{batch}.f32", "rb").read()), dtype=torch.float32).reshape(batch, -1)
        want = torch.frombuffer(bytearray(open(f"{bench}/logits-{batch}.f32", "rb").read()), dtype=torch.float32).reshape(batch, -1)
        with torch.inference_mode():
            got = net(x)
            diff = (got - want).abs().max().item()
            iters = max(200_000 // batch, 20)
            for _ in range(5):
                net(x)
            t = time.perf_counter()
            for _ in range(iters):
                net(x)
            s = time.perf_counter() - t
        rate = iters * batch / s
        print(f"torch forward batch {batch:>5}: {rate:>10.0f} agent-steps/s (1 thread), max |logit diff| vs Rust {diff:.2e}")
        results["forward"].append({"batch": batch, "agent_steps_per_s": rate, "max_abs_diff": diff})
    json.dump(results, open(f"{bench}/bench-torch.json", "w"), indent=2)


if __name__ == "__main__":
    main()
