"""``python -m plait`` runs the command line."""

from plait.cli import main

if __name__ == "__main__":
    main()
