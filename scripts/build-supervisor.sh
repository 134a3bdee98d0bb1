#!/usr/bin/env bash
# Build the supervisor as one file, dist/oscar-supervisor.pyz, to ship into job containers:
#   scripts/build-supervisor.sh [OUTPUT]
# The archive holds only the supervisor's own code (it imports nothing from oscar/). The
# target needs Python >= 3.11 with boto3, webdavclient3 and PyYAML installed
# (`pip install boto3 webdavclient3 pyyaml`); webdavclient3 pulls lxml, a compiled extension,
# which cannot be loaded from inside a zip archive.
set -euo pipefail
cd "$(dirname "$0")/.."
output="${1:-dist/oscar-supervisor.pyz}"
staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$(dirname "$output")"
tar --exclude='__pycache__' -cf - supervisor | tar -xf - -C "$staging"
python -m zipapp "$staging" --main 'supervisor.__main__:main_exit' \
    --python '/usr/bin/env python3' --compress --output "$output"
echo "built $output ($(wc -c < "$output") bytes)"
