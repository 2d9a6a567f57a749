"""The tracking API the pipeline calls: runs, the decorator, and how values map onto MLflow.

* ``run`` - :class:`~emstrack.Run`, :func:`~emstrack.tracked_run`, :func:`~emstrack.active_run`.
* ``decorator`` - :func:`~emstrack.tracked_optimization` (wrapt).
* ``mapping`` - pure functions: schemas and values to params, metrics, tags and ``config.json``.
* ``hooks`` - the extension point: observers of every run (PuLP capture, data lineage, ...).
* ``artifact_paths`` - which artifact paths a run has claimed.

Rule: nothing here raises into the pipeline; every failure goes through :mod:`emstrack._guard`.
"""
