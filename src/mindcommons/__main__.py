"""``python -m mindcommons`` runs the CLI."""

from mindcommons.cli.app import main

main()
