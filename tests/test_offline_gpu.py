"""The offline GPU bundle (deploy/offline-gpu): the data shrunk for the trip, and the script that trains there
and packs the runs into parts, run here on the CPU with a tiny configuration."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from datasets import make_dataset, scribble_image
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "deploy" / "offline-gpu"
sys.path.insert(0, str(BUNDLE))

from shrink_data import shrink  # noqa: E402

TINY = "--sizes 32 --epochs-frozen 1 --epochs-unfrozen 0 --bs 8 --members 1 --finetune-members 0"


def test_shrink_keeps_names_manifest_and_unreadable_files(tmp_path):
    import random

    source = make_dataset(tmp_path / "data", per_class=2)
    big = source / "dots" / "big.png"
    scribble_image(random.Random(1), width=900, height=600).save(big)
    (source / "MANIFEST.csv").write_text("file,series\ndots/big.png,s1\n")
    (source / "vertical" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    target = tmp_path / "small"

    n = shrink(source, target, side=300, quality=75)

    names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == names
    assert n == len(names) - 1  # all but the manifest
    assert (target / "MANIFEST.csv").read_text() == (source / "MANIFEST.csv").read_text()
    with Image.open(target / "dots" / "big.png") as img:
        assert img.format == "JPEG" and img.size == (300, 200)
    assert (target / "vertical" / "broken.jpg").read_bytes() == (source / "vertical" / "broken.jpg").read_bytes()


def test_train_script_trains_side_by_side_and_packs_every_run(tmp_path):
    data = make_dataset(tmp_path / "data", per_class=8)
    out, runs = tmp_path / "out", tmp_path / "runs"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DATA": str(data),
        "RUNS": str(runs),
    }
    done = subprocess.run(
        ["bash", str(BUNDLE / "train.sh"), str(out), f"a {TINY} --framing-images 0", "b --no-such-option"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr  # run b failed, and says so in its log
    packed = b"".join(p.read_bytes() for p in sorted(out.glob("runs.tar.part-*")))
    with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
        names = set(tar.getnames())
        log_b = tar.extractfile("runs/b.log").read().decode()
    assert {"runs/a/model.onnx", "runs/a/model.json", "runs/a/learner.pkl", "runs/a.log"} <= names
    assert "unrecognized arguments: --no-such-option" in log_b
