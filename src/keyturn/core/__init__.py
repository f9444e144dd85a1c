"""The functional core: the lifecycle and every rule about a key, as pure values and functions.

Records and commands come in, ``now`` and the policy come in as arguments, and a change to
write (or a typed refusal) comes out. Nothing here does I/O, reads a clock, draws randomness or
logs: the service (:mod:`keyturn.service`) loads, asks the ports, calls the core, commits and
delivers. Nothing here imports from outside ``keyturn.core`` but the crypto primitives.
"""
