"""Privileged contexts: the candidate pool, flip-rate scoring and its plot, selection, search.

The grids shipped with the package, by name (file `<name>_grid.yaml` here): the embedded
default's small pool, and the paper-sized pool of 30 harmful-branch instructions along the five
axes. Kept here, free of heavy imports, for the workflow and the config check.
"""

PACKAGE_GRIDS = ("default", "paper")
