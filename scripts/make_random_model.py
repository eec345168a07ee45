"""Write a freshly initialised DFNet (untrained!) to a safetensors file, for smoke runs and demos."""

from __future__ import annotations

import argparse

import torch

from dfnet.checkpoint import save_model
from dfnet.model import DFNet, DFNetConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    save_model(DFNet(DFNetConfig(width=args.width)).eval(), args.output, metadata={"note": "untrained"})
    print(f"{args.output}: untrained DFNet (width {args.width})")


if __name__ == "__main__":
    main()
