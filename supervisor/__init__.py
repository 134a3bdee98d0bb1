"""FaaS supervisor: runs inside every job (parse event, stage in, run script, stage out).

It imports nothing from `oscar/` so that it can ship into job containers on its own.
"""

__version__ = "0.1.0"
