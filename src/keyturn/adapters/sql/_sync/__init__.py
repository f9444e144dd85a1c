"""Generated from _async: the blocking SQL store and drivers (see :mod:`keyturn.adapters.sql`)."""
