#!/bin/sh
# Prints a cow saying the request body (a plain sh take on cowsay).
set -eu
text=$(tr '\n' ' ' < "$INPUT_FILE_PATH" | sed 's/ *$//')
line=$(printf '%s' "$text" | sed 's/./-/g')
printf ' -%s-\n< %s >\n -%s-\n' "$line" "$text" "$line"
cat <<'COW'
        \   ^__^
         \  (oo)\_______
            (__)\       )\/\
                ||----w |
                ||     ||
COW
