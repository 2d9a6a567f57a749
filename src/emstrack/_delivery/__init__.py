"""The write path: getting a run's records from the pipeline's process into its tracking store.

* ``spool`` - the write-ahead format: one folder per run, JSON-lines events, artifact copies.
* ``shipping`` - :func:`~emstrack._delivery.shipping.ship`, the one path from spooled records
  to the store, idempotent, used by live runs, the background thread and replay alike.
* ``store`` - the one module that calls MLflow's write API: probing, batching, retries.
* ``background`` - the thread that ships in background mode, drained at exit.
* ``replay`` - ``emstrack sync`` / ``status``, :func:`emstrack.flush` and :func:`emstrack.pending`.

Rule: nothing here imports the tracking API (``_tracking``); records arrive as spool events.
"""
