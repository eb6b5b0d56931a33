"""`python -m dlx ...` is the same as `dlx ...` (torchrun uses this form)."""

from dlx.cli.app import entry

if __name__ == "__main__":
    entry()
