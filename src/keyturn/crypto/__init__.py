"""Cryptographic primitives: secrets and ids, keyed hashes, sealing, signature checks.

Pure computation over ``secrets``, ``hmac`` and the ``cryptography`` package: no I/O, no
clock. Nothing here logs, raises with or puts in a repr any secret.
"""
