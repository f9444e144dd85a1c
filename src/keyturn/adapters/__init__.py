"""Ready adapters for keyturn's ports (:mod:`keyturn.ports`).

Each module fills one port and imports nothing heavier than the standard library unless its
extra is installed. Adapters are chosen and wired in one place, :mod:`keyturn.wiring`.
"""
