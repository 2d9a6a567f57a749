"""Reproducing runs: what a decorated call records for ``emstrack rerun``, and the rerun itself.

* :mod:`.recording` - at decoration and call time: the function's import path and tracking
  options (tags) and the call's arguments (``config.json``'s ``call``); imported by the
  tracking core, so it stays light.
* :mod:`.locate` - import a recorded function or option again.
* :mod:`.inputs` - rebuild the call's arguments from ``config.json``.
* :mod:`.rerun` - call it tracked into a new run and compare (:func:`emstrack.rerun`).
"""
