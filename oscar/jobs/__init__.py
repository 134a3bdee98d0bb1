"""Durable job records and their dispatch to executors."""
