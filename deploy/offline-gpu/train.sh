#!/usr/bin/env bash
# Train on a GPU machine that has torch but no internet, from what travelled with the checkout: the wheels
# `prepare.sh` downloaded (.whl) and the data it shrank (.gpu/data). Each RUN is "NAME [calligraphy train
# options]"; the runs train side by side, then all of them (logs, version directories, learner.pkl) are packed
# into one tar split into 15 MB parts in OUT_DIR: `cat OUT_DIR/runs.tar.part-* | tar x` unpacks them.
#
#   deploy/offline-gpu/train.sh "$OUT" "r34 --p-invert 0.5" "r35 --train-seed 10"
set -euo pipefail
out=${1:?usage: train.sh OUT_DIR "NAME [train options]"...}
shift
[ $# -gt 0 ] || { echo "train.sh: name at least one run" >&2; exit 2; }
data=${DATA:-.gpu/data}
runs=${RUNS:-runs}
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
mkdir -p "$runs" "$out"
pids=()
for spec in "$@"; do
    read -r name options <<< "$spec"
    # shellcheck disable=SC2086  # the options are words on purpose
    python3 -m calligraphy train --data "$data" --out "$runs/$name" --export-learner $options > "$runs/$name.log" 2>&1 &
    pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
tar -C "$(dirname "$runs")" -cf - "$(basename "$runs")" | split -b 15M - "$out/runs.tar.part-"
exit "$status"
