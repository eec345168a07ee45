"""GPU memory over many calls: the prepared fp16 CUDA-graph model (1x512x512) and the product path.

Prints, for each path, the time for N calls and ``torch.cuda.memory_allocated`` / ``memory_reserved`` before,
after 10 calls and after N calls: allocated memory that grows with the call count is a leak.

    python benchmarks/bench_gpu_memory.py [N]      # N = 1000 by default; needs a CUDA device
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import build_model, make_inputs  # noqa: E402

from dfnet.inference import Inpainter  # noqa: E402
from dfnet.optimize import prepare_for_inference  # noqa: E402

if not torch.cuda.is_available():
    sys.exit("bench_gpu_memory.py needs a CUDA device")
device = torch.device("cuda")
calls = int(sys.argv[1]) if len(sys.argv) > 1 else 1000


def track(name, fn):
    fn()
    torch.cuda.synchronize()
    start = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    t0 = time.perf_counter()
    for i in range(calls):
        fn()
        if i == 9:
            torch.cuda.synchronize()
            after10 = torch.cuda.memory_allocated()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    end = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    print(
        f"{name}: {calls} calls in {seconds:.2f} s; allocated MiB start {start[0] / 2**20:.1f}, after 10 calls "
        f"{after10 / 2**20:.1f}, end {end[0] / 2**20:.1f}; reserved MiB start {start[1] / 2**20:.1f}, "
        f"end {end[1] / 2**20:.1f}; peak allocated {torch.cuda.max_memory_allocated() / 2**20:.1f}"
    )


model = build_model(1.0, None)
prepared = prepare_for_inference(model, device, precision="fp16", cuda_graphs=True)
image, hole_mask = make_inputs(1, 512, device)
track("prepared fp16 CUDA graph, 1x512x512", lambda: prepared.complete(image, hole_mask))
inpainter = Inpainter.from_pretrained("default", device=device)
rng = np.random.default_rng(0)
photo = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
hole = np.zeros((512, 512), bool)
hole[150:300, 200:380] = True
track("Inpainter.from_pretrained('default').inpaint, 512x512 uint8", lambda: inpainter.inpaint(photo, hole))
