"""Starting work: `train_once` / `sweep_once` (`entry`), the Hydra app (`hydra_app`), preflight
and capacity checks before anything is made, new run folders (`runfolders`), `--resume`,
`dlx lr-find`, and the failsafe metrics a run leaves when it cannot end normally.

May import `config`, `record`, `training`, `tracking`, `data`, `models`; never `runs`' or
`cli`'s modules; `sweeps` only for the sweep entry.
"""
