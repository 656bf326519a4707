"""Subcommands of the model store: predict, evaluate, models.

Each command imports the runtime inside its function, so `calligraphy --help` and the other parts' commands
start without loading onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from calligraphy.errors import UsageError


def whole_number(minimum: int):
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="PATH_OR_VERSION",
        help="a version of the store (v0003) or a model directory; default: the current version",
    )
    parser.add_argument(
        "--crops", type=whole_number(0), help="extra square crops averaged with the whole image (default: model.json)"
    )
    parser.add_argument("--threads", type=whole_number(1), default=1, help="ONNX Runtime threads (default 1)")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register this part's subcommands."""
    predict = sub.add_parser("predict", help="tell the style of images: one JSON line per image")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    _add_model_options(predict)
    predict.set_defaults(func=run_predict)

    evaluate = sub.add_parser("evaluate", help="accuracy on a folder-per-class directory")
    evaluate.add_argument("--data", required=True, type=Path, metavar="DIR", help="one folder per class")
    _add_model_options(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    models = sub.add_parser("models", help="list, add, promote or roll back model versions")
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="stored versions; * marks the current one").set_defaults(func=run_list)
    add = actions.add_parser("add", help="copy a trainer output directory in as a new version")
    add.add_argument("dir", type=Path, metavar="DIR")
    add.add_argument("--promote", action="store_true", help="make it the current version too")
    add.set_defaults(func=run_add)
    promote = actions.add_parser("promote", help="make a version the current one")
    promote.add_argument("version", metavar="VERSION")
    promote.set_defaults(func=run_promote)
    actions.add_parser("rollback", help="go back to the previously promoted version").set_defaults(func=run_rollback)


def _classifier(args: argparse.Namespace):
    """The classifier `--model` names: a model directory, a stored version, or the current model."""
    from model_store.metadata import ModelError
    from model_store.runtime import Classifier, open_classifier
    from model_store.store import VERSION_PATTERN, ModelStore, StoreError

    if args.model and not Path(args.model).is_dir() and not VERSION_PATTERN.fullmatch(args.model):
        raise UsageError(f"--model {args.model}: neither a model directory nor a version name (like v0003)")
    try:
        if args.model and Path(args.model).is_dir():
            return Classifier(Path(args.model), threads=args.threads, crops=args.crops)
        return open_classifier(ModelStore.from_env(), args.model, threads=args.threads, crops=args.crops)
    except (StoreError, ModelError) as exc:
        raise UsageError(str(exc)) from exc


def _print_json(obj: dict) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def run_predict(args: argparse.Namespace) -> int:
    """Print one JSON object per image; exit 2 when any image could not be classified."""
    from model_store.images import ImageError
    from model_store.runtime import BATCH_SIZE

    classifier = _classifier(args)
    failed = 0
    for start in range(0, len(args.images), BATCH_SIZE):
        files = args.images[start : start + BATCH_SIZE]
        readable, contents, results = [], [], {}
        for path in files:
            try:
                contents.append(path.read_bytes())
                readable.append(path)
            except OSError as exc:
                results[path] = {"file": str(path), "error": f"cannot read the file: {exc.strerror}"}
        for path, outcome in zip(readable, classifier.predict_batch(contents), strict=True):
            if isinstance(outcome, ImageError):
                results[path] = {"file": str(path), "error": str(outcome)}
            else:
                probs = {label: round(p, 6) for label, p in outcome.probs.items()}
                results[path] = {"file": str(path), "label": outcome.label, "probs": probs, "model": outcome.version}
        for path in files:
            failed += "error" in results[path]
            _print_json(results[path])
    return 2 if failed else 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Print a table for people, then the same figures as one JSON line."""
    from model_store.evaluate import evaluate

    if not args.data.is_dir():
        raise UsageError(f"{args.data} is not a directory")
    classifier = _classifier(args)
    try:
        result = evaluate(classifier, args.data)
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    if result.n == 0:
        raise UsageError(f"no images under {args.data} in folders named after the classes {classifier.classes}")
    print(f"model {classifier.version} (crops={classifier.crops}) on {args.data}")
    print(result.table())
    _print_json(result.to_json())
    return 0


def run_list(args: argparse.Namespace) -> int:
    """One line per version: current marker, name, accuracy, creation time."""
    from model_store.store import ModelStore

    store = ModelStore.from_env()
    versions = store.list()
    if not versions:
        print(f"no versions in {store.root}")
    for v in versions:
        accuracy = f"{v.accuracy:.3f}" if v.accuracy is not None else "  -  "
        print(f"{'*' if v.is_current else ' '} {v.name}  accuracy {accuracy}  {v.created_at}")
    if store.current() is None:
        print("nothing promoted: serving the packaged default model", file=sys.stderr)
    return 0


def run_add(args: argparse.Namespace) -> int:
    from model_store.store import ModelStore, StoreError

    store = ModelStore.from_env()
    try:
        name = store.add(args.dir)
        if args.promote:
            store.promote(name)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    print(name)
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from model_store.store import ModelStore, StoreError

    try:
        ModelStore.from_env().promote(args.version)
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    print(f"current: {args.version}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from model_store.store import ModelStore, StoreError

    try:
        name = ModelStore.from_env().rollback()
    except StoreError as exc:
        raise UsageError(str(exc)) from exc
    print(f"current: {name}")
    return 0
