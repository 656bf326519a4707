"""Copy a dataset (a folder per class, and its MANIFEST.csv) with every image shrunk to a longest side and
re-encoded as JPEG, so that it travels to a remote trainer under a size limit (the seed data: 33 MB at 288 px).
File names stay, so the grouped split and the exclusion list still apply. Run:

    python deploy/offline-gpu/shrink_data.py ../shared/data/calligraphy-3 .gpu/data --side 448 --quality 75
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image


def shrink(source: Path, target: Path, side: int, quality: int) -> int:
    """Write the shrunk copy of `source` into `target` (which must not exist); return how many images."""
    target.mkdir(parents=True)
    count = 0
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or relative.parts[0].startswith("."):
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if len(relative.parts) == 1:  # MANIFEST.csv, README, licence: as they are
            shutil.copy2(path, destination)
            continue
        try:
            with Image.open(path) as img:
                img.thumbnail((side, side), Image.Resampling.LANCZOS)
                img.convert("RGB").save(destination, "JPEG", quality=quality)
        except OSError:
            shutil.copy2(path, destination)  # unreadable: the trainer skips it and says so, as for the original
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--side", type=int, default=448, help="longest side in pixels (default %(default)s)")
    parser.add_argument("--quality", type=int, default=75, help="JPEG quality (default %(default)s)")
    args = parser.parse_args()
    n = shrink(args.source, args.target, args.side, args.quality)
    print(f"{args.target}: {n} images, longest side at most {args.side} px, JPEG quality {args.quality}")


if __name__ == "__main__":
    main()
