"""`python -m dlx ...` is the same as `dlx ...` (torchrun uses this form)."""

from dlx.cli import main

if __name__ == "__main__":
    main()
