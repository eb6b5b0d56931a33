"""Training: one run's `fit()` as named steps (`loop`, `run`, `step`, `finish`), early
stopping, checkpoints (their folder I/O is `record`'s), optimizers, schedulers, hooks, the
knobs (debug, profiling, EMA, clipping) and data-parallel runs.

May import `record`, `config`, `data`, `models`, `tracking`, `errors`; never `launch`,
`sweeps`, `runs`, `cli`."""
