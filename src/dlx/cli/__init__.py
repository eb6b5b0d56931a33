"""The `dlx` command: the Typer app (`app`), the options several commands share (`options`),
the answers given without running anything (`help`, `confindex` for completion), the one error
boundary and exit codes (`boundary`), and `dlx board`.

Owns: turning a command line into a call and an outcome into an exit code. Imports lazily:
`dlx --help` and completion never load torch. May import every other dlx package (it is the
top); nothing imports it.
"""
