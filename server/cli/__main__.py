"""``python -m server.cli``: the same as the ``workshop`` console script."""

from server.cli.main import main

if __name__ == "__main__":
    main()
