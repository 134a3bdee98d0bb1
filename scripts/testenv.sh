#!/usr/bin/env bash
# Install (and cache) the real servers the tests use: MinIO, WebDAV, Slurm, Kubernetes,
# interLink (virtual kubelet + API server, built from ../shared/vendor/interlink), browser,
# web (the dashboard's npm packages: its build tool and axe-core), sqs (ElasticMQ) and kafka.
#   scripts/testenv.sh install [minio|webdav|slurm|kubernetes|interlink|browser|web|sqs|kafka ...]
#   scripts/testenv.sh check   [NAME ...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m tests.services "${@:-install}"
