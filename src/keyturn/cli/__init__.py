"""The ``keyturn`` command: operate a key store from a terminal or a script.

Split by role, each module saying what it must not do:

* :mod:`~keyturn.cli.main`: the entry point; every failure becomes one line or one JSON object;
* :mod:`~keyturn.cli.parser`: the grammar, commands in lifecycle order, help for every option;
* :mod:`~keyturn.cli.app`: one run: the store, the service, the notifier, the actor, the answer;
* :mod:`~keyturn.cli.stores`: which store a command may open (an existing one, unless it makes it);
* :mod:`~keyturn.cli.output`: colour, times, tables, the secret set apart;
* :mod:`~keyturn.cli.guidance`: what happened and what to do next, for the key's state;
* :mod:`~keyturn.cli.failures`: exit codes, and the error's message in the command's words;
* one module per group of commands: :mod:`~keyturn.cli.keys` (the lifecycle),
  :mod:`~keyturn.cli.reading` (list, show), :mod:`~keyturn.cli.operating` (init, relay,
  rotate-server-key, security-key), :mod:`~keyturn.cli.serve`, :mod:`~keyturn.cli.drawing`
  (diagram) and :mod:`~keyturn.cli.demo`.

No lifecycle rule lives in this package: every decision is the service's.
"""

from keyturn.cli.main import main

__all__ = ["main"]
