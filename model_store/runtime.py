"""ONNX Runtime inference with the training's preprocessing: image bytes in, class probabilities out."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from model_store.framing import Framing, tiled
from model_store.images import ImageError, decode_image, to_rgb
from model_store.metadata import MODEL_FILE, ModelError, class_prior, read_metadata
from model_store.neighbours import Neighbours, NeighbourSettings
from model_store.preprocess import Preprocessing, to_tensor
from model_store.store import DEFAULT_VERSION, ModelStore

log = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "probs"
# The network's last hidden layer, which a model with a framing detector also outputs (docs/model-format.md).
FEATURES_NAME = "features"
CROP_FRACTION = 0.75
# Images per predict_batch call for callers with many: on one thread larger batches were no faster per image
# here (2 vCPU, Lite0 at 256 px) and cost about 25 MB of activations per image.
BATCH_SIZE = 4


@dataclass(frozen=True)
class Prediction:
    """Class probabilities for one image, from one model version."""

    label: str
    probs: dict[str, float]
    version: str

    @property
    def confidence(self) -> float:
        return self.probs[self.label]


@dataclass(frozen=True)
class ViewOutputs:
    """What the network gave for one picture's views: raw probabilities [views, classes], the features [views, F]
    where they were asked for, and the framing detector's call (one or a few characters rather than a page)."""

    probs: np.ndarray
    features: np.ndarray | None
    few: bool


def crop_boxes(width: int, height: int, crops: int) -> list[tuple[int, int, int, int]]:
    """`crops` squares spread evenly along the long side, so tall scrolls and wide banners keep their shape.

    Each square's side is the short side, but at most 3/4 of the long side so that even a square image
    gets views that differ from the whole.
    """
    side = int(min(width, height, CROP_FRACTION * max(width, height)))
    boxes = []
    for i in range(crops):
        t = i / (crops - 1) if crops > 1 else 0.5
        if width >= height:
            left, top = round(t * (width - side)), (height - side) // 2
        else:
            left, top = (width - side) // 2, round(t * (height - side))
        boxes.append((left, top, left + side, top + side))
    return boxes


def _split_like(probs: np.ndarray, batches: list[np.ndarray]) -> list[np.ndarray]:
    """The rows of `probs` cut back into one block per batch it was concatenated from."""
    return np.split(probs, np.cumsum([len(b) for b in batches])[:-1])


def _with_whole(wholes: np.ndarray, seconds: list[np.ndarray]) -> list[np.ndarray]:
    """Per image, its whole view's row on top of its second views' rows."""
    return [np.concatenate([whole[None], second]) for whole, second in zip(wholes, seconds, strict=True)]


def _fits(shape: list, expected: tuple[int, ...]) -> bool:
    """Whether an ONNX shape [N, ...] matches `expected` past the batch axis; named axes match anything."""
    dims = shape[1:]
    return len(dims) == len(expected) and all(
        not isinstance(d, int) or d == e for d, e in zip(dims, expected, strict=True)
    )


def calibrate(probs: np.ndarray, temperature: float, prior: Sequence[float] | None = None) -> np.ndarray:
    """softmax(log(p) / T - log(prior)) row-wise: the temperature fitted at training time, then Bayes' rule from
    the training split's class shares (`prior`) to equal odds for every class."""
    if temperature == 1.0 and prior is None:
        return probs / probs.sum(axis=-1, keepdims=True)
    # float32 softmax outputs 0 below its smallest normal number, so that is what a 0 stands for.
    logits = np.log(np.clip(probs, np.finfo(np.float32).tiny, None)) / temperature
    if prior is not None:
        logits -= np.log(prior)
    logits -= logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=-1, keepdims=True)


class Classifier:
    """One ONNX Runtime session for one model version, shared by all threads."""

    def __init__(
        self,
        model_dir: Path,
        *,
        version: str | None = None,
        threads: int = 1,
        crops: int | None = None,
        raw: bool = False,
    ) -> None:
        """`crops` overrides model.json's; `raw` leaves out its temperature and class prior, giving the network's
        probabilities (the views averaged), which is what calibration fits them to."""
        model_dir = Path(model_dir)
        self.metadata: dict = read_metadata(model_dir)
        self.classes: list[str] = list(self.metadata["classes"])
        self.version: str = version or model_dir.name
        self.preprocessing = Preprocessing.from_metadata(self.metadata)
        self.crops: int = self.metadata.get("tta", {}).get("crops", 0) if crops is None else crops
        if self.crops < 0:
            raise ValueError("crops must be >= 0")
        self.temperature = 1.0 if raw else float(self.metadata.get("temperature", 1.0))
        self.prior: list[float] | None = None if raw else class_prior(self.metadata)
        self.framing = Framing.from_metadata(self.metadata)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(model_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
            raise ModelError(f"{model_dir / MODEL_FILE}: cannot be loaded: {exc}") from exc
        self._check_signature(model_dir)
        self.neighbours = self._load_neighbours(model_dir)
        log.debug("loaded model %s from %s (crops=%d)", self.version, model_dir, self.crops)

    def _check_signature(self, model_dir: Path) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
            raise ModelError(f"{model_dir}: model.onnx must take '{INPUT_NAME}' and give '{OUTPUT_NAME}'")
        size, n_classes = self.preprocessing.size, len(self.classes)
        if not _fits(inputs[0].shape, (3, size, size)):
            raise ModelError(f"{model_dir}: input shape {inputs[0].shape} does not fit input_size {size}")
        out = next(o for o in outputs if o.name == OUTPUT_NAME)
        if not _fits(out.shape, (n_classes,)):
            raise ModelError(f"{model_dir}: output shape {out.shape} does not fit {n_classes} classes")
        if self.framing is not None:
            features = next((o for o in outputs if o.name == FEATURES_NAME), None)
            if features is None or not _fits(features.shape, (len(self.framing.weights),)):
                raise ModelError(
                    f"{model_dir}: model.json has a framing detector of {len(self.framing.weights)} weights, "
                    f"but model.onnx has no '{FEATURES_NAME}' output of that size"
                )

    def _load_neighbours(self, model_dir: Path) -> Neighbours | None:
        settings = NeighbourSettings.from_metadata(self.metadata)
        if settings is None:
            return None
        features = next((o for o in self._session.get_outputs() if o.name == FEATURES_NAME), None)
        if features is None or len(features.shape) != 2 or not isinstance(features.shape[1], int):
            raise ModelError(f"{model_dir}: model.json has neighbours, but model.onnx has no '{FEATURES_NAME}' output")
        try:
            return Neighbours.load(model_dir, settings, len(self.classes), features.shape[1])
        except ValueError as exc:
            raise ModelError(f"{model_dir}: {exc}") from None

    @property
    def decode_side(self) -> int:
        """Pixels per side worth decoding: twice the input keeps the final resize a true downscale."""
        return 2 * self.preprocessing.size

    def views(self, img: Image.Image) -> np.ndarray:
        """The whole image plus the configured crops, as a float32 batch [1 + crops, 3, S, S]."""
        return self._tensors([img, *self._crop_images(img)])

    def _crop_images(self, img: Image.Image) -> list[Image.Image]:
        return [img.crop(box) for box in crop_boxes(img.width, img.height, self.crops)]

    def _tensors(self, images: list[Image.Image]) -> np.ndarray:
        return np.stack([to_tensor(view, self.preprocessing) for view in images])

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Raw model probabilities for a preprocessed batch [N, 3, S, S]."""
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]

    def features(self, img: Image.Image) -> np.ndarray:
        """The network's last hidden layer for a decoded RGB image, whole: what a framing detector reads."""
        batch = to_tensor(img, self.preprocessing)[None]
        if FEATURES_NAME not in {o.name for o in self._session.get_outputs()}:
            raise ModelError(f"model {self.version} has no '{FEATURES_NAME}' output")
        return self._session.run([FEATURES_NAME], {INPUT_NAME: batch})[0][0]

    def shows_few_characters(self, img: Image.Image) -> bool:
        """The framing detector's call on one decoded RGB image (False without a detector). It costs a pass of its
        own: for tools; `predict` reads the call off the whole image's pass."""
        return self.framing is not None and bool(self.framing.few_characters(self.features(img)[None])[0])

    def second_views(self, img: Image.Image, few: bool) -> list[Image.Image]:
        """The views averaged with the whole image: its tiling into a page when `few` (the detector's call), else
        the configured crops."""
        return [tiled(img, self.framing.tiles)] if few and self.framing is not None else self._crop_images(img)

    def _outputs(self, batch: np.ndarray, features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw probabilities of a preprocessed batch, and its features when asked for."""
        if not features:
            return self.run(batch), None
        probs, feats = self._session.run([OUTPUT_NAME, FEATURES_NAME], {INPUT_NAME: batch})
        return probs, feats

    def view_outputs(self, images: list[Image.Image], features: bool = False) -> list[ViewOutputs]:
        """Per RGB image, its views' raw probabilities and, for a model with a memory or when `features`, their
        features: the whole image and its crops, or, when the framing detector says the whole image shows a few
        characters, the whole image and its tiling."""
        keep = features or self.neighbours is not None
        if self.framing is None or not self.crops:
            batches = [self.views(img) for img in images]
            probs, feats = self._outputs(np.concatenate(batches), keep)
            per_image = _split_like(feats, batches) if feats is not None else [None] * len(images)
            return [ViewOutputs(p, f, False) for p, f in zip(_split_like(probs, batches), per_image, strict=True)]
        wholes = self._tensors(images)
        whole_probs, whole_feats = self._outputs(wholes, True)
        few = self.framing.few_characters(whole_feats)
        seconds = [self._tensors(self.second_views(img, is_few)) for img, is_few in zip(images, few, strict=True)]
        second_probs, second_feats = self._outputs(np.concatenate(seconds), keep)
        probs = _with_whole(whole_probs, _split_like(second_probs, seconds))
        feats = [None] * len(images)
        if second_feats is not None:
            feats = _with_whole(whole_feats, _split_like(second_feats, seconds))
        return [ViewOutputs(p, f, bool(is_few)) for p, f, is_few in zip(probs, feats, few, strict=True)]

    def combine(self, outputs: ViewOutputs) -> np.ndarray:
        """One image's raw probabilities: its views' mean, blended with the memory's votes for the views' mean
        features when the model has a memory and the picture is a page (the memory holds pages; before the
        temperature, which is fitted to this)."""
        probs = outputs.probs.astype(np.float64).mean(axis=0)
        if self.neighbours is None or outputs.features is None or outputs.few:
            return probs
        return self.neighbours.blend(probs[None], outputs.features.mean(axis=0)[None])[0]

    def calibrated(self, probs: np.ndarray) -> np.ndarray:
        """What the runtime shows for raw probabilities [..., classes]: the temperature and class prior applied."""
        return calibrate(probs, self.temperature, self.prior)

    def _prediction(self, outputs: ViewOutputs) -> Prediction:
        probs = self.calibrated(self.combine(outputs))
        best = int(np.argmax(probs))
        return Prediction(
            label=self.classes[best],
            probs={c: float(p) for c, p in zip(self.classes, probs, strict=True)},
            version=self.version,
        )

    def predict_image(self, img: Image.Image) -> Prediction:
        """Classify a decoded image (any Pillow mode; upright, as `decode_image` returns it)."""
        return self._prediction(self.view_outputs([to_rgb(img)])[0])

    def predict(self, data: bytes) -> Prediction:
        """Classify image bytes; raises ImageError subclasses for input that is not a usable image."""
        return self.predict_image(decode_image(data, max_side=self.decode_side))

    def predict_batch(self, items: Sequence[bytes]) -> list[Prediction | ImageError]:
        """Classify several images with one session call per view kind; a bad image yields its ImageError in its
        place."""
        decoded: list[Image.Image | ImageError] = []
        for data in items:
            try:
                decoded.append(decode_image(data, max_side=self.decode_side))
            except ImageError as exc:
                decoded.append(exc)
        images = [d for d in decoded if isinstance(d, Image.Image)]
        if not images:
            return [d for d in decoded if isinstance(d, ImageError)]
        per_image = iter(self.view_outputs(images))
        return [d if isinstance(d, ImageError) else self._prediction(next(per_image)) for d in decoded]


def open_classifier(
    store: ModelStore, version: str | None = None, *, threads: int = 1, crops: int | None = None
) -> Classifier:
    """A classifier for a verified stored version; None: the current one, else the packaged default."""
    name = version or store.current()
    path = store.current_path() if name is None else store.verify(name)
    return Classifier(path, version=name or DEFAULT_VERSION, threads=threads, crops=crops)


class LiveClassifier:
    """Serves the store's current version and swaps in a newly promoted one without failing a request.

    Calls read `self._classifier` once and use that object to the end, so a swap (a single reference
    assignment, made after the new session is fully built) never affects a call in flight.
    """

    def __init__(self, store: ModelStore, *, threads: int = 1, crops: int | None = None) -> None:
        self._store = store
        self._threads = threads
        self._crops = crops
        self._swap_lock = threading.Lock()
        self._classifier = self._load()

    def _load(self) -> Classifier:
        return open_classifier(self._store, threads=self._threads, crops=self._crops)

    def reload(self) -> str:
        """Load the store's current version if it changed; return the version now served."""
        with self._swap_lock:
            wanted = self._store.current() or DEFAULT_VERSION
            if wanted != self._classifier.version:
                previous = self._classifier.version
                self._classifier = self._load()
                log.info("model swapped: %s -> %s", previous, self._classifier.version)
            return self._classifier.version

    @property
    def version(self) -> str:
        return self._classifier.version

    @property
    def classes(self) -> list[str]:
        return self._classifier.classes

    @property
    def metadata(self) -> dict:
        return self._classifier.metadata

    def predict(self, data: bytes) -> Prediction:
        """Classify image bytes with the version current when the call starts."""
        return self._classifier.predict(data)
