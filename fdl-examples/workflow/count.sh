#!/bin/sh
set -eu
name=$(basename "$INPUT_FILE_PATH")
wc -l < "$INPUT_FILE_PATH" | tr -d ' ' > "$TMP_OUTPUT_DIR/$name.lines"
