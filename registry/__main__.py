"""`python -m registry` is `model-registry`."""

from .cli import main

main()
