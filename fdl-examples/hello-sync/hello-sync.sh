#!/bin/sh
set -eu
printf '%s, %s\n' "$GREETING" "$(cat "$INPUT_FILE_PATH")"
