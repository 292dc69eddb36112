"""File and message formats -> readings (the input edge of the pipeline).

Each parser checks a whole input against the site configuration and returns column-wise reading
rows (:mod:`lastgang.store`), or raises :class:`~lastgang.errors.InvalidInput` listing every
problem with its file, line and column. Parsers do no I/O of their own: they get the bytes.

- :mod:`lastgang.ingest.csv_readings`: CSV register readings, phase power samples and interval
  values (``docs/data-formats.md``).
"""
