#!/usr/bin/python3
"""PyTorch timings of the very models ort_export.py exported to ONNX
(scripts/compare-ort.sh), so that PyTorch, ONNX Runtime and slab run the same
weights.

Each model is rebuilt from DIR/NAME.pth (load_state_dict strict), folded as
ort_export.py folds it, and timed in eval mode under torch.inference_mode
with bench.py's method: the models of the call interleaved round by round,
3 warm-up calls each, median over rounds. Input: DIR/NAME_bB_input.f32.
Run it with docs/peers.md's set-up:

    env -u OPENBLAS_CORETYPE \
      LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
      /usr/bin/python3 tools/reference/ort_torch_bench.py --dir DIR --models deit_tiny,slab_deit_tiny --batch 1

Output: one JSON object {"pytorch": {environment}, "rows": [{"name", "batch",
"median_ms", "p90_ms", "runs"}]} like bench.py's.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import ort_export  # noqa: E402
import reference as R  # noqa: E402


def load(dirname, name):
    m = R.DeiT(ort_export.config(name))
    path = os.path.join(dirname, f"{name}.pth")
    if not os.path.exists(path):
        raise SystemExit(f"ort_torch_bench.py: {path} does not exist: run ort_export.py --out {dirname} first")
    m.load_state_dict(torch.load(path)["model"], strict=True)
    return ort_export.deploy(name, m.float().eval()).float().eval()


def main():
    ap = argparse.ArgumentParser(description="PyTorch timings of ort_export.py's models")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    names = a.models.split(",")
    variants = [(n, load(a.dir, n)) for n in names]
    f = os.path.join(a.dir, f"{names[0]}_b{a.batch}_input.f32")
    if os.path.exists(f):
        x = torch.from_numpy(np.fromfile(f, dtype="<f4").reshape(a.batch, 3, 224, 224))
    else:
        x = torch.randn(a.batch, 3, 224, 224)
    rows = [dict(r, batch=a.batch) for r in bench.time_group(f"B{a.batch}", variants, lambda: x, a.rounds)]
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
            "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "blas": bench.loaded_blas(), "rounds": a.rounds}
    json.dump({"pytorch": info, "rows": rows}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
