"""oscar: the control plane of an OSCAR-compatible serverless, event-driven FaaS platform."""

__version__ = "0.1.0"
