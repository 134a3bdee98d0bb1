"""Where a pod's `run.sh` runs: one module per backend behind `PodBackend`."""
