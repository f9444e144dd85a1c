"""Diagrams of the lifecycle, generated from the one machine (an entry point's concern, no rule).

- :mod:`keyturn.diagrams.pictures` decides what a picture shows under a policy, from the answers
  of :data:`~keyturn.core.lifecycle.MACHINE` (no I/O);
- :mod:`keyturn.diagrams.drawing` has ``transitions``' ``GraphMachine`` draw that picture as
  Mermaid or Graphviz source, and Graphviz's ``dot`` render it (the only part that runs a program).

The names below are the drawing module's public ones, importable from here.
"""

from keyturn.diagrams.drawing import (
    FILES,
    GraphvizMissingError,
    dot,
    graphviz_version,
    mermaid,
    png,
    render_all,
    svg,
)

__all__ = [
    "FILES",
    "GraphvizMissingError",
    "dot",
    "graphviz_version",
    "mermaid",
    "png",
    "render_all",
    "svg",
]
