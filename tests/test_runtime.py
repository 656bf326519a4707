"""The ONNX Runtime classifier: predictions, preprocessing, crops, batches, threads and the hot swap."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from image_factory import encode, halves, solid, strokes
from model_factory import make_model_dir
from PIL import Image

from model_store.images import NotAnImage
from model_store.metadata import ModelError
from model_store.preprocess import Preprocessing, centre_square, normalise, resize, to_tensor
from model_store.runtime import Classifier, LiveClassifier, calibrate, crop_boxes, tiled
from model_store.store import StoreError
from trainer.framing import expose_features

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["kaishu", "lishu", "xiaozhuan"]


def set_metadata(model_dir: Path, **changes) -> Path:
    meta = json.loads((model_dir / "model.json").read_text())
    meta.update(changes)
    (model_dir / "model.json").write_text(json.dumps(meta))
    return model_dir


@pytest.mark.parametrize(
    ("color", "label"), [((255, 0, 0), "kaishu"), ((0, 255, 0), "lishu"), ((0, 0, 255), "xiaozhuan")]
)
def test_predicts_the_known_class_with_probabilities_in_model_order(model_dir, color, label):
    classifier = Classifier(model_dir)
    prediction = classifier.predict(encode(solid(color)))
    assert prediction.label == label and prediction.version == "trained"
    assert list(prediction.probs) == CLASSES
    assert sum(prediction.probs.values()) == pytest.approx(1.0, abs=1e-9)
    assert prediction.confidence == max(prediction.probs.values()) > 0.9


def test_grey_is_uniform(model_dir):
    probs = Classifier(model_dir).predict(encode(solid((128, 128, 128)))).probs
    assert list(probs.values()) == pytest.approx([1 / 3] * 3, abs=1e-6)


def test_bytes_and_decoded_image_give_the_same_answer(model_dir):
    classifier = Classifier(model_dir, version="v0042")
    img = strokes((90, 130))
    assert classifier.predict(encode(img)) == classifier.predict_image(img)
    assert classifier.predict_image(img).version == "v0042"


def test_bad_input_raises_image_errors(model_dir):
    with pytest.raises(NotAnImage):
        Classifier(model_dir).predict(b"GIF89a but not really")


def test_normalise_is_the_training_formula():
    prep = Preprocessing(8, "squish", "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    img = strokes((8, 8))
    expected = (np.asarray(img, dtype=np.float64) / 255 - prep.mean) / prep.std
    tensor = normalise(img, prep)
    assert tensor.dtype == np.float32 and tensor.shape == (3, 8, 8) and tensor.flags.c_contiguous
    assert np.abs(tensor - expected.transpose(2, 0, 1)).max() < 1e-5


def test_squish_and_crop_resize_to_the_input_size():
    img = halves((120, 40))
    squish = resize(img, Preprocessing(16, "squish", "bilinear", (0.5,) * 3, (0.5,) * 3))
    crop = resize(img, Preprocessing(16, "crop", "bilinear", (0.5,) * 3, (0.5,) * 3))
    assert squish.size == crop.size == (16, 16)
    assert squish.getpixel((1, 8)) == (255, 0, 0) and squish.getpixel((14, 8)) == (0, 0, 255)
    assert centre_square(120, 40, 16) == (40, 0, 80, 40)
    assert to_tensor(img, Preprocessing(16, "crop", "nearest", (0.5,) * 3, (0.5,) * 3)).shape == (3, 16, 16)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["squish", "crop"])
def test_resize_matches_fastai_validation_resize_pixel_for_pixel(method):
    from fastai.vision.augment import Resize, ResizeMethod
    from fastai.vision.core import PILImage

    fastai_method = {"squish": ResizeMethod.Squish, "crop": ResizeMethod.Crop}[method]
    prep = Preprocessing(224, method, "bilinear", (0.5,) * 3, (0.5,) * 3)
    for i, size in enumerate([(300, 257), (257, 300), (1000, 333), (17, 900), (224, 224), (513, 511)]):
        img = strokes(size, seed=i)
        theirs = Resize(224, method=fastai_method)(PILImage.create(np.asarray(img)), split_idx=1)
        assert np.array_equal(np.asarray(theirs), np.asarray(resize(img, prep))), size


def test_metadata_is_validated(model_dir):
    for changes, message in [
        ({"classes": "kaishu"}, "classes"),
        ({"resample": "sinc"}, "resample"),
        ({"std": [0.5, 0, 0.5]}, "std"),
        ({"temperature": 0}, "temperature"),
        ({"tta": {"crops": -1}}, "tta.crops"),
        ({"framing": {"tiles": 1, "bias": 0, "weights": [1, 0, 0]}}, "framing.tiles"),
        ({"framing": {"tiles": 3, "bias": 0, "weights": []}}, "framing.weights"),
        ({"framing": {"tiles": 3, "weights": [1, 0, 0]}}, "bias"),
        ({"class_prior": {"kaishu": 0.5, "lishu": 0.5}}, "class_prior"),
        ({"class_prior": {"kaishu": 0.5, "lishu": 0.5, "xiaozhuan": 0}}, "class_prior"),
        ({"class_prior": [0.2, 0.3, 0.5]}, "class_prior"),
    ]:
        original = (model_dir / "model.json").read_text()
        set_metadata(model_dir, **changes)
        with pytest.raises(ModelError, match=message):
            Classifier(model_dir)
        (model_dir / "model.json").write_text(original)


def test_a_model_without_the_contract_names_is_refused(tmp_path):
    import onnx

    model_dir = make_model_dir(tmp_path / "m")
    model = onnx.load(model_dir / "model.onnx")
    model.graph.input[0].name = "pixels"
    model.graph.node[0].input[0] = "pixels"
    onnx.save(model, model_dir / "model.onnx")
    with pytest.raises(ModelError, match="must take 'image'"):
        Classifier(model_dir)


def test_temperature_softens_the_probabilities(model_dir, tmp_path):
    hot = Classifier(set_metadata(make_model_dir(tmp_path / "hot"), temperature=2.0))
    data = encode(solid((200, 40, 40)))
    raw = np.array(list(Classifier(model_dir).predict(data).probs.values()))
    expected = np.exp(np.log(raw) / 2) / np.exp(np.log(raw) / 2).sum()
    assert list(hot.predict(data).probs.values()) == pytest.approx(expected.tolist(), abs=1e-9)
    raw_again = Classifier(tmp_path / "hot", raw=True).predict(data).probs
    assert list(raw_again.values()) == pytest.approx(raw.tolist(), abs=1e-9)
    assert calibrate(np.array([[0.0, 1.0]]), 3.0)[0].tolist() == pytest.approx([0.0, 1.0], abs=1e-9)


def test_the_class_prior_is_divided_out_after_the_temperature(model_dir, tmp_path):
    data = encode(solid((150, 110, 100)))
    raw = np.array(list(Classifier(model_dir).predict(data).probs.values()))
    assert raw.argmax() == 0
    shares = {"kaishu": 6, "lishu": 1, "xiaozhuan": 3}  # counts: the runtime normalises them to shares
    leaning = Classifier(set_metadata(make_model_dir(tmp_path / "prior"), temperature=0.5, class_prior=shares))
    logits = np.log(raw) / 0.5 - np.log([0.6, 0.1, 0.3])
    expected = np.exp(logits) / np.exp(logits).sum()
    prediction = leaning.predict(data)
    assert list(prediction.probs.values()) == pytest.approx(expected.tolist(), abs=1e-9)
    assert prediction.label == "lishu"  # the rarest class in training wins a picture that leans kaishu 0.50 to 0.27
    # Equal shares change nothing; `raw` leaves out the temperature and the prior alike.
    even = Classifier(set_metadata(make_model_dir(tmp_path / "even"), class_prior=dict.fromkeys(CLASSES, 1)))
    assert list(even.predict(data).probs.values()) == pytest.approx(raw.tolist(), abs=1e-9)
    assert list(Classifier(tmp_path / "prior", raw=True).predict(data).probs.values()) == pytest.approx(raw.tolist())


def test_crop_boxes_tile_tall_and_wide_images():
    assert crop_boxes(100, 400, 4) == [(0, 0, 100, 100), (0, 100, 100, 200), (0, 200, 100, 300), (0, 300, 100, 400)]
    assert crop_boxes(400, 100, 2) == [(0, 0, 100, 100), (300, 0, 400, 100)]
    assert crop_boxes(300, 400, 1) == [(0, 50, 300, 350)]
    assert crop_boxes(100, 100, 2) == [(0, 12, 75, 87), (25, 12, 100, 87)]
    assert crop_boxes(100, 100, 0) == []


def test_crops_average_the_whole_image_and_each_crop(model_dir):
    img = halves((400, 100))
    plain = Classifier(model_dir, crops=0)
    views = [img] + [img.crop(box) for box in crop_boxes(400, 100, 2)]
    expected = np.mean([list(plain.predict_image(v).probs.values()) for v in views], axis=0)
    multi = Classifier(model_dir, crops=2)
    assert multi.views(img).shape == (3, 3, 32, 32)
    assert list(multi.predict_image(img).probs.values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert multi.predict_image(img).probs != plain.predict_image(img).probs


def three_quarters_red(size: tuple[int, int] = (400, 100)) -> Image.Image:
    """Red but for its last quarter, blue: the centre crop is all red, the tiled picture as red as the whole."""
    img = solid("red", size)
    img.paste(solid("blue", (size[0] // 4, size[1])), (size[0] - size[0] // 4, 0))
    return img


def with_framing(model_dir: Path, red_weight: float) -> Path:
    """The test model with a framing detector on its features (the channel means): a picture is 'a few
    characters' when red_weight * (its normalised red mean) > 0."""
    assert expose_features(model_dir / "model.onnx") == 3
    return set_metadata(
        model_dir, tta={"crops": 1}, framing={"tiles": 3, "bias": 0.0, "weights": [red_weight, 0.0, 0.0]}
    )


def test_tiled_repeats_the_picture():
    img = halves((30, 20))
    grid = tiled(img, 3)
    assert grid.size == (90, 60)
    assert np.array_equal(np.asarray(grid.crop((60, 40, 90, 60))), np.asarray(img))


@pytest.mark.parametrize(("red_weight", "second"), [(1.0, "tiled"), (-1.0, "crop")])
def test_framing_picks_the_tiles_or_the_crop_as_the_second_view(model_dir, red_weight, second):
    img = three_quarters_red()
    plain = Classifier(model_dir, crops=0)
    view = tiled(img, 3) if second == "tiled" else img.crop(crop_boxes(*img.size, 1)[0])
    expected = np.mean([list(plain.predict_image(v).probs.values()) for v in (img, view)], axis=0)
    framed = Classifier(with_framing(model_dir, red_weight))
    assert list(framed.predict_image(img).probs.values()) == pytest.approx(expected.tolist(), abs=1e-6)
    cropped = np.mean([list(plain.predict_image(v).probs.values()) for v in (img, img.crop((150, 0, 250, 100)))], 0)
    assert (list(framed.predict_image(img).probs.values()) == pytest.approx(cropped.tolist(), abs=1e-6)) is (
        second == "crop"
    )


def test_framing_batches_answer_as_single_calls_and_crops_0_turns_it_off(model_dir):
    classifier = Classifier(with_framing(model_dir, 1.0))
    items = [encode(three_quarters_red()), b"", encode(solid("blue", (80, 40))), encode(strokes((64, 200)))]
    results = classifier.predict_batch(items)
    assert [results[0], results[2], results[3]] == [classifier.predict(items[i]) for i in (0, 2, 3)]
    assert isinstance(results[1], NotAnImage)
    whole_only = Classifier(model_dir, crops=0).predict(items[0])
    assert whole_only == Classifier(Path(model_dir), crops=0).predict(items[0])
    assert whole_only.probs != results[0].probs or whole_only.label == results[0].label


def test_a_framing_detector_needs_the_features_output(model_dir):
    set_metadata(model_dir, tta={"crops": 1}, framing={"tiles": 3, "bias": 0.0, "weights": [1.0, 0.0, 0.0]})
    with pytest.raises(ModelError, match="no 'features' output"):
        Classifier(model_dir)
    expose_features(model_dir / "model.onnx")
    set_metadata(model_dir, framing={"tiles": 3, "bias": 0.0, "weights": [1.0, 0.0]})
    with pytest.raises(ModelError, match="framing detector of 2 weights"):
        Classifier(model_dir)


def test_crops_default_comes_from_model_json(model_dir):
    assert Classifier(set_metadata(model_dir, tta={"crops": 3})).crops == 3
    assert Classifier(model_dir, crops=0).crops == 0


def test_batch_is_one_session_call_with_errors_in_place(model_dir, monkeypatch):
    classifier = Classifier(model_dir, crops=1)
    items = [encode(solid("red")), b"", encode(strokes((64, 200))), b"not an image", encode(solid("blue"))]
    expected = [classifier.predict(d) for d in (items[0], items[2], items[4])]
    calls = []
    run = classifier.run
    monkeypatch.setattr(classifier, "run", lambda batch: calls.append(len(batch)) or run(batch))
    results = classifier.predict_batch(items)
    assert calls == [6]
    assert [results[0], results[2], results[4]] == expected
    assert isinstance(results[1], NotAnImage) and isinstance(results[3], NotAnImage)
    assert all(isinstance(r, NotAnImage) for r in classifier.predict_batch([b"", b"x"]))


def test_concurrent_calls_share_one_session(model_dir):
    classifier = Classifier(model_dir)
    images = {c: encode(solid(c, (50 + i, 40))) for i, c in enumerate(["red", "blue", "lime"])}
    labels = {"red": "kaishu", "blue": "xiaozhuan", "lime": "lishu"}
    failures = []

    def worker(color: str) -> None:
        for _ in range(40):
            if classifier.predict(images[color]).label != labels[color]:
                failures.append(color)

    threads = [threading.Thread(target=worker, args=(c,)) for c in images for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_hot_swap_under_concurrent_calls_fails_no_request(store, tmp_path):
    store.add(make_model_dir(tmp_path / "a"))
    store.add(make_model_dir(tmp_path / "b", classes=("xiaozhuan", "lishu", "kaishu")))
    store.promote("v0001")
    live = LiveClassifier(store)
    red = encode(solid("red"))
    expected = {"v0001": "kaishu", "v0002": "xiaozhuan"}
    seen, errors = set(), []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                prediction = live.predict(red)
                if prediction.label != expected[prediction.version]:
                    errors.append(prediction)
                seen.add(prediction.version)
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            store.promote("v0002" if i % 2 == 0 else "v0001")
            assert live.reload() == store.current() == live.version
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert seen == {"v0001", "v0002"}
    assert live.classes == ["kaishu", "lishu", "xiaozhuan"] and live.metadata["input_size"] == 32


def test_reload_keeps_serving_when_the_new_version_does_not_verify(store, model_dir):
    store.add(model_dir)
    store.add(model_dir)
    store.promote("v0001")
    live = LiveClassifier(store)
    assert live.reload() == "v0001"
    store.promote("v0002")
    (store.path("v0002") / "sha256").chmod(0o644)
    (store.path("v0002") / "sha256").write_text("0" * 64)
    with pytest.raises(StoreError, match="checksum"):
        live.reload()
    assert live.version == "v0001" and live.predict(encode(solid("red"))).label == "kaishu"


def test_live_classifier_serves_the_packaged_default_when_nothing_is_promoted(store, model_dir, monkeypatch):
    monkeypatch.setattr("model_store.store.default_model_path", lambda: model_dir)
    live = LiveClassifier(store)
    assert live.version == "default"
    store.promote(store.add(model_dir))
    assert live.reload() == "v0001"


def test_serving_modules_never_import_torch_or_fastai():
    code = (
        "import sys, model_store.runtime, model_store.cli, model_store.evaluate, calligraphy.cli;"
        "calligraphy.cli.build_parser();"
        "heavy = sorted(m for m in ('torch', 'fastai', 'timm', 'torchvision') if m in sys.modules);"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_pil_image_input_need_not_be_rgb(model_dir):
    classifier = Classifier(model_dir)
    red_on_clear = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    red_on_clear.paste((255, 0, 0, 255), (0, 0, 40, 30))
    assert classifier.predict_image(red_on_clear) == classifier.predict(encode(red_on_clear))
    assert classifier.predict_image(Image.new("L", (40, 40), 128)).probs["kaishu"] == pytest.approx(1 / 3)
