#!/bin/sh
set -eu
name=$(basename "$INPUT_FILE_PATH")
tr '[:lower:]' '[:upper:]' < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$name"
