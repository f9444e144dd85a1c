"""The I/O ports' blocking twins, generated from the async ones by ``scripts/unasync.py``."""
