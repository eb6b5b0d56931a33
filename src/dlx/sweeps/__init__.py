"""Sweeps: dlx's Hydra sweeper (`sweeper`), the Optuna study (`study`), the ranked table and
summary.csv (`summary`), and `dlx sweep --resume` (`resume`).

May import `config`, `record`, `launch`, `tracking`; never `runs` or `cli`.
"""
