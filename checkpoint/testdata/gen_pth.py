#!/usr/bin/python3
"""Generates the tiny .pth fixtures checkpoint's tests read, plus
expected.json holding every tensor's dtype, shape and values as PyTorch sees
them (contiguous, flattened). Run with Debian's interpreter, which has torch:

    cd checkpoint/testdata && /usr/bin/python3 gen_pth.py
"""
import collections
import json

import torch

torch.manual_seed(0)


def state_dict():
    sd = collections.OrderedDict()
    sd["w32"] = torch.randn(3, 4)
    sd["w16"] = torch.randn(5).half()
    sd["wbf16"] = torch.randn(2, 3).bfloat16()
    sd["w64"] = torch.randn(2).double()
    base = torch.arange(12.0).reshape(3, 4)
    sd["transposed"] = torch.randn(3, 4).t()  # [4,3], strides (1,4)
    sd["share.row"] = base[1]  # offset 4 into the shared storage
    sd["share.col"] = base[:, 2]  # offset 2, stride 4
    sd["share.all"] = base
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2))
    sd["blocks.0.norm1.iter"] = torch.tensor(1234, dtype=torch.int64)  # 0-d
    sd["blocks.0.norm1.total_step"] = torch.tensor(-7, dtype=torch.int64)
    sd["bn.num_batches_tracked"] = torch.tensor(5)
    sd["ids"] = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.int64)[:, 1:]  # non-contiguous int
    sd["scalar"] = torch.tensor(2.5)  # 0-d float
    sd["empty"] = torch.zeros(0, 3)
    return sd


def dump(sd):
    out = {}
    for k, v in sd.items():
        v = v.detach()
        vals = v.contiguous().flatten()
        vals = vals.tolist() if v.dtype == torch.int64 else vals.double().tolist()
        out[k] = {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape), "values": vals}
    return out


sd = state_dict()
ckpt = {"model": sd, "epoch": 3, "max_accuracy": 81.5, "optimizer": {"state": {}, "lr": 0.001}, "note": "fixture"}
torch.save(ckpt, "nested.pth")
torch.save(ckpt, "legacy.pth", _use_new_zipfile_serialization=False)
torch.save(sd, "plain.pth")
torch.save(sd, "proto4.pth", pickle_protocol=4)  # FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE
ema = collections.OrderedDict((k, v * 2) for k, v in list(sd.items())[:2])
torch.save({"model": sd, "model_ema": ema}, "ema.pth")
m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
torch.save(m.state_dict(), "module.pth")
with open("expected.json", "w") as f:
    json.dump({"sd": dump(sd), "ema": dump(ema), "module": dump(m.state_dict())}, f)
