"""The write path: getting a run's records from the pipeline's process into its tracking store.

* ``spool`` - the write-ahead format: one folder per run, JSON-lines events, artifact copies.
* ``shipping`` - :func:`~emstrack._delivery.shipping.ship`, the one path from spooled records
  to the store, idempotent, used by live runs, the background thread and replay alike.
* ``store`` - the one module that calls MLflow's write API: probing, batching, retries.
* ``background`` - the thread that ships in thread mode, drained at exit.
* ``courier`` - process mode (the default): hands finished runs to this process's shipper.
* ``shipper`` - the shipper process (``python -m emstrack._delivery.shipper``).
* ``orphans`` - exactly-once delivery of entries no live run holds (handed over, orphaned).
* ``replay`` - ``emstrack sync`` / ``status``, :func:`emstrack.flush` and :func:`emstrack.pending`.

Rule: nothing here imports the tracking API (``_tracking``); records arrive as spool events.
"""
