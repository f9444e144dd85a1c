"""The blocking service, generated from the async one by ``scripts/unasync.py``."""
