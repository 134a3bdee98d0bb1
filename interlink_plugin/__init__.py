"""oscar's interLink plugin: runs the pods interLink sends to a virtual node, on Slurm or locally.

The wire contract is interLink's plugin API (`POST /create`, `POST /delete`, `GET /status`,
`GET /getLogs`; see `docs/hpc.md`). Backends share the Slurm commands of
`oscar.executors.slurm_commands`.
"""
