#!/bin/sh
# A stand-in model: a fixed linear score per row, thresholded into a class.
set -eu
name=$(basename "$INPUT_FILE_PATH" .csv)
echo "Scoring $name on $(hostname)"
python3 - "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$name.predictions.json" <<'PY'
import csv
import json
import sys

WEIGHTS = (0.4, -0.2, 0.7)
rows = []
with open(sys.argv[1], newline="") as handle:
    for row in csv.reader(handle):
        if not row or row[0].startswith("#"):
            continue
        features = [float(v) for v in row[: len(WEIGHTS)]]
        score = sum(w * x for w, x in zip(WEIGHTS, features))
        rows.append({"score": round(score, 4), "class": int(score > 0.5)})
with open(sys.argv[2], "w") as out:
    json.dump({"predictions": rows}, out)
PY
