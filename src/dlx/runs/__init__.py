"""Reading past runs back: load a folder (`load`), the `--filter`/`--sort` grammar (`query`),
the `dlx runs` table (`table`), `dlx compare`, and `dlx eval` (`evaluate`).

May import `config`, `record`, `launch`, `training`, `tracking`, `data`, `models`; never `cli`.
"""
