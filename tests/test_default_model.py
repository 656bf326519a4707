"""The model that ships in the package: it loads with no training and no network, and it recognises styles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_store.metadata import read_metadata
from model_store.runtime import Classifier, calibrate
from model_store.store import default_model_path

SAMPLES = Path(__file__).resolve().parents[1] / "sandbox" / "samples"


def test_packaged_model_is_complete_and_measured():
    path = default_model_path()
    metadata = read_metadata(path)
    assert metadata["classes"] == ["kaishu", "lishu", "xiaozhuan"]
    assert metadata["metrics"]["split"] == "grouped"
    assert metadata["metrics"]["accuracy"] > 0.8
    assert (path / "model.onnx").stat().st_size < 25 * 1024 * 1024


@pytest.mark.parametrize("sample", ["kaishu-ukai-1.png", "kaishu-ukai-2.png"])
def test_packaged_model_reads_regular_script_rendered_from_a_kai_font(sample):
    prediction = Classifier(default_model_path()).predict((SAMPLES / sample).read_bytes())
    assert prediction.label == "kaishu"
    assert sum(prediction.probs.values()) == pytest.approx(1.0, abs=1e-6)


def test_packaged_model_tiles_one_character_and_crops_a_page():
    """Its framing detector: one character cut out of a sample (with a margin) gets the tiled view, the sample's
    four characters the crop; the answer is the average of the whole picture and that view."""
    from PIL import Image

    from model_store.framing import tiled

    classifier = Classifier(default_model_path())
    page = Image.open(SAMPLES / "kaishu-ukai-2.png").convert("RGB")
    character = page.crop((50, 54, 234, 224))
    plain = Classifier(default_model_path(), crops=0, raw=True)

    assert classifier.shows_few_characters(character) and not classifier.shows_few_characters(page)
    views = [list(plain.predict_image(v).probs.values()) for v in (character, tiled(character, 3))]
    expected = calibrate(np.mean(views, axis=0)[None], classifier.temperature)[0]
    prediction = classifier.predict_image(character)
    assert list(prediction.probs.values()) == pytest.approx(expected.tolist(), abs=1e-5)
    assert prediction.label == "kaishu" and classifier.framing.tiles == 3


def test_predict_works_right_after_install(tmp_path):
    """`calligraphy predict` with an empty store falls back to the packaged model, without loading torch."""
    script = (
        "import sys; from calligraphy.cli import main; code = main(['predict', sys.argv[1]]); "
        "print(sorted(m for m in ('torch', 'fastai') if m in sys.modules), file=sys.stderr); sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(SAMPLES / "kaishu-ukai-2.png")],
        capture_output=True,
        text=True,
        env={"CALLIGRAPHY_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    line = json.loads(result.stdout)
    assert line["model"] == "default" and line["label"] == "kaishu"
    assert result.stderr.strip().splitlines()[-1] == "[]"
