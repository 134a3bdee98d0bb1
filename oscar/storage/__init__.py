"""Object storage: the embedded S3-compatible store and (later) external providers."""
