"""The async source of the SQL store and drivers (see :mod:`keyturn.adapters.sql`)."""
