#!/usr/bin/env bash
# Short runs of candidate recipes on the committed split, one after another on the whole machine,
# each scored by `gcnseg test` (last.pt, flip TTA) on the validation and the test split.
# Recipes are chosen by validation; test is reported so the table shows how far that carries.
# usage: benchmarks/recipe_search.sh OUT NAME "TRAIN ARGS" [NAME "TRAIN ARGS" ...]
#   e.g. benchmarks/recipe_search.sh runs/search lite2-e8 "--model gcn_efficientnet_lite2 --epochs 8"
# then: benchmarks/recipe_table.py OUT   (from the repository root, after `make test`)
set -euo pipefail
OUT=$1
shift
DATA=${DATA:-../shared/data/oxford-pets-sample}
MANIFEST=manifests/oxford-pets-sample.json
BIN=.venv/bin
while (($# >= 2)); do
  name=$1 args=$2
  shift 2
  # shellcheck disable=SC2086  # the recipe's arguments are meant to split
  $BIN/gcnseg -q train --config pets_default --data "$DATA" --output "$OUT" --name "$name" $args
  for split in val test; do
    $BIN/gcnseg -q test --checkpoint "$OUT/$name/last.pt" --data "$DATA" --manifest "$MANIFEST" \
      --split "$split" --flip --worst 0 --json "$OUT/$name/$split.json" >/dev/null
  done
done
