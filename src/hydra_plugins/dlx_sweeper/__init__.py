"""dlx's Hydra sweeper: `hydra/sweeper=optuna` (Bayesian search on current Optuna, with pruning,
the study kept in the sweep folder) and `hydra/sweeper=dlx_grid` (a grid that can prune and
resume). Hydra finds it as a plugin in the `hydra_plugins` namespace package; the work itself
is in `dlx.sweeps.sweeper`, imported only when a sweep starts (every Hydra start scans this
package)."""
