"""`python -m lfs_agent` is `lfs-s3-agent`."""

from .cli import main

main()
