#!/usr/bin/env bash
# Install (and cache) the real servers the tests use: MinIO, WebDAV, Slurm, Kubernetes,
# interLink (virtual kubelet + API server, built from ../shared/vendor/interlink), browser,
# web (the dashboard's npm packages: its build tool and axe-core), sqs (ElasticMQ), kafka and
# keycloak (the OIDC provider of the auth tests) and busybox (busybox-static: the root of the
# self-contained supervisor's tests).
#   scripts/testenv.sh install [minio|webdav|slurm|kubernetes|interlink|browser|web|sqs|kafka|keycloak|busybox ...]
#   scripts/testenv.sh check   [NAME ...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m tests.services "${@:-install}"
