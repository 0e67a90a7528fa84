"""``python -m opstrail`` runs the command-line interface."""

from opstrail.cli.main import main

if __name__ == "__main__":
    main()
