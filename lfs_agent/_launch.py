"""What git-lfs runs: `python -S <this file>`, set by `lfs-s3-agent install`.

git-lfs starts the agent once per transfer queue (PROTOCOL.md), so start-up is paid again and
again. `-S` skips `site` (the site-packages scan and every `.pth` file: about 20 ms here); the
serve path needs only the standard library and this package, whose parent directory replaces
this file's own as the first entry of `sys.path`. Whatever later needs site-packages (botocore,
for a credential chain beyond the environment) brings `site` in itself (`s3client`).

The agent is served by a warm server's forked child when one is running (`warm.py`, the server
in `warm_server.py`), else here.
"""

import sys
from os.path import abspath, dirname

if __name__ == "__main__":
    sys.path[0] = dirname(dirname(abspath(__file__)))
    if sys.argv[1:2] == ["--warm-server"]:
        from lfs_agent import warm_server

        warm_server.serve_forever(sys.argv[2])
        sys.exit(0)
    from lfs_agent import warm

    warm.launch(abspath(__file__))
    from lfs_agent.cli import main

    main(["serve"])
