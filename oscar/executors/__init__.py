"""Executors: how one job (one run of the supervisor) is started and watched."""
