"""``python -m durably``: the ``durably`` command."""

from durably.cli import main

if __name__ == "__main__":
    main()
