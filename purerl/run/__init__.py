"""The outside-of-jit layer around ``make_train``: checkpoints (and, in the command line, progress and files).
Nothing here is needed to call an algorithm's ``make_train``."""
