"""The read side behind :mod:`emstrack.analysis`: fast queries of MLflow stores and their shaping.

* ``query`` - the run table and how a store is opened for reading; ``sql`` reads SQL-backed
  stores with read-only SELECTs, ``client`` anything else through ``MlflowClient``.
* ``filters`` - the subset of MLflow's filter syntax evaluated in SQL.
* ``coerce`` - params typed back to numbers and bools; ``frame`` - the tidy run DataFrame.
* ``direction`` - whether higher or lower is better, from a metric's name.
* ``groups`` - per-group statistics and best runs; ``export`` - CSV and Parquet files.
* ``errors`` - the analysis exceptions, re-exported by :mod:`emstrack.analysis`.
"""
