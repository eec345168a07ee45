"""`dfnet train`: train or resume a DFNet; `dfnet export-checkpoint`: training checkpoint to safetensors."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dfnet.cli.common import int_in, non_empty

if TYPE_CHECKING:
    from dfnet.training import TrainConfig


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("dfnet")
    for old in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
        logger.removeHandler(old)  # an earlier run in this process may have bound a stderr that is gone
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _inputs(args: argparse.Namespace, config: TrainConfig) -> list[str | Path | None]:
    """Every path a run reads: data folders, weights and (unless resuming, which rewrites the run's own
    resolved copy) the config file."""
    config_file = args.config if args.resume is None and Path(args.config).is_file() else None
    data_folders = [config.data.root, config.data.val_root, config.data.val_mask_dir]
    return [*data_folders, config.init_weights, config.vgg.weights, config_file]


def _written(config: TrainConfig) -> list[Path]:
    """The run directory and the files a run writes directly inside it."""
    from dfnet.training import EXPORT_NAME, RUN_CONFIG_NAME

    return [config.run_dir, config.run_dir / RUN_CONFIG_NAME, config.run_dir / EXPORT_NAME]


def _train(args: argparse.Namespace) -> int:
    from dfnet.files import check_outputs
    from dfnet.training import config_to_yaml, load_config, train

    config = load_config(args.config, args.overrides)
    if args.print_config:
        print(config_to_yaml(config), end="")
        return 0
    check_outputs(_written(config), _inputs(args, config), args.overwrite)
    _setup_logging()
    result = train(config, resume=args.resume)
    if result.export is not None:
        print(f"{result.run_dir}: trained to step {result.global_step}; weights exported to {result.export}")
    if result.skipped_images:
        print(f"skipped {len(result.skipped_images)} unreadable images:", file=sys.stderr)
        for path in result.skipped_images:
            print(f"  {path}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from dfnet.files import check_outputs
    from dfnet.training import export_checkpoint

    check_outputs([args.output], [args.checkpoint], args.overwrite)
    config = export_checkpoint(args.checkpoint, args.output, half=args.half, working_size=args.working_size)
    print(f"{args.output}: exported ({len(config.fusion_layers)} fusion blocks, width {config.width:g})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train DFNet from a YAML config (places2, celeba, smoke or a file)",
        description="Train DFNet with PyTorch Lightning. Overrides are section.key=value, the value read as "
        "YAML, e.g. trainer.max_steps=100 model.fusion_layers=[0,1,2] optim.lr=2e-4.",
    )
    p.add_argument(
        "--config",
        required=True,
        type=non_empty,
        help="a YAML file or a packaged config name (places2, celeba, smoke)",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument(
        "--resume",
        metavar="PATH|auto",
        help="continue from a checkpoint; 'auto' takes the run's last.ckpt when there is one",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument(
        "--overwrite", action="store_true", help="allow the run directory to be, or lie inside, a data folder"
    )
    p.set_defaults(func=_train)

    e = sub.add_parser("export-checkpoint", help="write a training checkpoint's weights as .safetensors")
    e.add_argument("checkpoint", help="a .ckpt written by dfnet train")
    e.add_argument("output", help="output .safetensors")
    e.add_argument("--half", action="store_true", help="store fp16 weights")
    e.add_argument("--overwrite", action="store_true", help="allow the output to replace the checkpoint")
    e.add_argument(
        "--working-size",
        type=int_in(1, 16384),
        help="training resolution to record (inference strategies work at it)",
    )
    e.set_defaults(func=_export)
