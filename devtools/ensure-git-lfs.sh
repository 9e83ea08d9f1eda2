#!/bin/sh
# Make sure the real git-lfs (3.3 or newer) is installed: the agent and the end-to-end tests need it.
set -eu
if git lfs version >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "git-lfs is missing: installing it with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q git-lfs >/dev/null
    git lfs version >&2
    exit 0
fi
echo "git-lfs is not installed. Install it, then run make again:" >&2
echo "    sudo apt-get install git-lfs      (Debian/Ubuntu; see https://git-lfs.com for others)" >&2
exit 1
