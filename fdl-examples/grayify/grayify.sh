#!/bin/sh
# Writes a grayscale copy of the input image, same name, into the output folder.
set -eu
name=$(basename "$INPUT_FILE_PATH")
echo "Converting $name to grayscale"
python3 - "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/$name" <<'PY'
import sys
from PIL import Image, ImageOps

with Image.open(sys.argv[1]) as image:
    ImageOps.grayscale(image).save(sys.argv[2], format=image.format)
PY
