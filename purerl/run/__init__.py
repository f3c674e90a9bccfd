"""The outside-of-jit layer around ``make_train``: the runner, checkpoints, statistics, plots, and the format of
every file the command line writes (run directories and eval.json: :mod:`purerl.run.rundir`; sweep directories:
:mod:`purerl.run.sweepdir`; the bench JSON: :func:`purerl.run.bench.write_report`), which the Python API
writes and reads through the same functions. Nothing here is needed to call an algorithm's ``make_train``."""
