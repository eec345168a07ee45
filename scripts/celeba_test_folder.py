"""Link the test part of the CelebA split into a folder, so `dfnet eval --images` can read it.

The split is the one `dfnet train --config celeba` uses (read from root/dfnet_split.json, or drawn with the
same seed and written there when it does not exist yet), so training and evaluation never share an image.

    python scripts/celeba_test_folder.py data/celeba/img_align_celeba data/celeba/test
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dfnet.data import celeba_split


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", help="the aligned CelebA images (data.root of the celeba config)")
    parser.add_argument("out", help="folder to fill with links to the test images")
    parser.add_argument("--split-file", help="data.split_file (default: ROOT/dfnet_split.json)")
    parser.add_argument("--seed", type=int, default=0, help="data.seed of the training config (default 0)")
    args = parser.parse_args()
    split = celeba_split(args.root, args.split_file, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for image in split.test:
        link = out / image.name
        if not link.exists():
            os.symlink(image.resolve(), link)
    print(f"{out}: {len(split.test)} test images ({len(split.train)} in training)")


if __name__ == "__main__":
    main()
