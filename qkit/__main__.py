"""``python -m qkit``: the command line (see ``qkit.cli``)."""

from qkit.cli import main

if __name__ == "__main__":
    main()
