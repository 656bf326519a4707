"""Trainer: fastai progressive-resize training on a folder per class, exported as an ONNX version directory."""
