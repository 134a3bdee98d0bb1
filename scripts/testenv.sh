#!/usr/bin/env bash
# Install (and cache) the real servers the tests use: MinIO, WebDAV, Slurm, Kubernetes,
# interLink (virtual kubelet + API server, built from ../shared/vendor/interlink), browser,
# and web (the dashboard's npm packages: its build tool and axe-core).
#   scripts/testenv.sh install [minio|webdav|slurm|kubernetes|interlink|browser|web ...]
#   scripts/testenv.sh check   [NAME ...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m tests.services "${@:-install}"
