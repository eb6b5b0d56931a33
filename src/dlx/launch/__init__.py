"""Starting work: `train_once` / `sweep_once` (`entry`), the Hydra app (`hydra_app`), preflight
and capacity checks before anything is made, new run folders (`runfolders`), `--resume`,
reopening a run folder for eval/resume/predict/export (`reopen.open_run`), `dlx lr-find`,
`dlx advise`, and the failsafe metrics a run leaves when it cannot end normally.

May import `config`, `record`, `training`, `tracking`, `data`, `models`, `sweeps` (the sweep
entry and the task's Optuna hook); never `runs`, `infer` or `cli`.
"""
