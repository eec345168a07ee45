"""Exemplar detail (:mod:`dfnet.exemplar`) against an earlier version of itself, in one process.

The earlier version is read from git (``--baseline REV``: ``src/dfnet/exemplar.py`` at that commit) and loaded
as a separate module; both add their default detail to the same completions (the bundled network's fills of
the given photos and masks, or synthetic ones), in interleaved rounds, so that load from other processes
hits both alike. Printed: per-call time of each (median over rounds) and the median per-round ratio.

    python benchmarks/bench_exemplar.py --baseline 316a9d9 --images data/heldout/scenes \\
        --masks data/eval_masks_512 --rounds 5 --threads 1
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


# The dfnet modules dfnet.exemplar imports from: the baseline gets them as they were at its revision too.
EXEMPLAR_IMPORTS = ("strategies", "texture_metrics")


def _module_at(revision: str, name: str, module_name: str):
    """``src/dfnet/<name>.py`` as it was at ``revision``, executed as a module called ``module_name``."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/dfnet/{name}.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"{module_name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def load_baseline(revision: str):
    """``dfnet.exemplar`` as it was at ``revision`` (and the dfnet modules it imports, as they were then), as a
    module of its own; this process's own ``dfnet`` modules are left as they are."""
    import dfnet.exemplar  # noqa: F401  (the current modules load first, so they are restored below)

    current = {name: sys.modules[f"dfnet.{name}"] for name in EXEMPLAR_IMPORTS}
    try:
        for name in EXEMPLAR_IMPORTS:
            sys.modules[f"dfnet.{name}"] = _module_at(revision, name, f"{name}_baseline")
        return _module_at(revision, "exemplar", "exemplar_baseline")
    finally:
        sys.modules.update({f"dfnet.{name}": module for name, module in current.items()})


def pairs(images: str | None, masks: str | None, size: int, limit: int) -> list[tuple[np.ndarray, ...]]:
    """(rgb, hole, network fill) triples: held-out photos x masks with the bundled model, or synthetic."""
    from dfnet.inference import Inpainter

    inpainter = Inpainter.from_pretrained("default", device="cpu", texture=None)
    if images:
        from dfnet.evaluation import PairDataset, PairPlan, list_images, load_mask_set

        mask_set = load_mask_set(masks, size)
        photos = list_images(images)
        data = PairDataset(photos, mask_set, PairPlan(len(photos), mask_set, "all"), size)
        samples = [data[k] for k in range(min(limit, len(data)))]
        triples = [(s["image"].permute(1, 2, 0).numpy(), s["hole"][0].numpy().astype(bool)) for s in samples]
    else:
        rng = np.random.default_rng(0)
        triples = []
        for k in range(limit):
            rgb = np.clip(rng.normal(128, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            hole = np.zeros((size, size), bool)
            hole[size // 4 : size // 4 + size // (3 + k % 3), size // 5 : size // 2 + k * 7] = True
            triples.append((rgb, hole))
    return [(rgb, hole, inpainter.inpaint(rgb, hole, "original")) for rgb, hole in triples]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="main", help="git revision of the version to compare with")
    parser.add_argument("--images")
    parser.add_argument("--masks")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time by the process's CPU time (steadier on a shared machine)",
    )
    args = parser.parse_args(argv)
    clock = time.process_time if args.cpu_time else time.perf_counter
    torch.set_num_threads(args.threads)
    from dfnet import exemplar

    baseline = load_baseline(args.baseline)
    data = pairs(args.images, args.masks, args.size, args.pairs)
    versions = {"baseline": baseline, "current": exemplar}
    for module in versions.values():  # warm-up
        module.add_exemplar_detail(*data[0])
    times: dict[str, list[float]] = {name: [] for name in versions}
    for round_ in range(args.rounds):
        order = list(versions) if round_ % 2 == 0 else list(versions)[::-1]
        for name in order:
            start = clock()
            for triple in data:
                versions[name].add_exemplar_detail(*triple)
            times[name].append((clock() - start) / len(data))
    ratios = [c / b for c, b in zip(times["current"], times["baseline"], strict=True)]
    print(
        f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{args.threads} thread(s), {len(data)} pairs at {args.size}, {args.rounds} interleaved rounds"
    )
    for name, values in times.items():
        print(f"{name}: {1000 * statistics.median(values):.1f} ms per image (min {1000 * min(values):.1f})")
    print(f"current / baseline: {statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    sys.exit(main())
