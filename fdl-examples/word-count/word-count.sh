#!/bin/sh
# INPUT_FILE_PATH and TMP_OUTPUT_DIR are set by the supervisor for every job.
set -eu
name=$(basename "$INPUT_FILE_PATH")
echo "Counting words in $name"
wc -w < "$INPUT_FILE_PATH" | tr -d ' ' > "$TMP_OUTPUT_DIR/$name.count"
