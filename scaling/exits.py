"""Exit codes of `scaling train` (and the statuses they stand for), shared by the trainer,
the launchers and the sweep executors, which read a run's outcome from them."""

OK = 0
ERROR = 1
DIVERGED = 3
MISMATCH = 4  # `scaling reproduce`: the numbers differ
PREEMPTED = 75  # EX_TEMPFAIL: a checkpoint was saved; run the same command again
INTERRUPTED = 130  # Ctrl-C (the trainer saved a checkpoint first; a second one did not)

# How a training run ended (summary.json's `status`) -> its exit code.
FOR_STATUS = {"completed": OK, "diverged": DIVERGED, "preempted": PREEMPTED,
              "interrupted": INTERRUPTED}
