"""Run hooks that observe what a pipeline does while a run is open, without edits to it.

Each module registers its hook with :func:`emstrack._tracking.hooks.register` when imported and
is named in :data:`~emstrack._tracking.hooks.BUILTIN_HOOKS`; ``pulp`` records PuLP solves,
``datasets`` the household data a run loads (as MLflow dataset inputs).
"""
