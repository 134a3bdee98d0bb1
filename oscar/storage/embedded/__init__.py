"""The embedded S3-compatible object store of the single-machine default."""
