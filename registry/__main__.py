"""`python -m registry` is `model-registry`."""

from registry.cli import main

main()
