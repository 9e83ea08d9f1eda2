"""`model-registry init`: make a folder a registry repository (idempotent: existing files stay)."""

from __future__ import annotations

from pathlib import Path

from lfs_agent import config as agent_config
from lfs_agent.errors import AgentError
from lfs_agent.install import install as install_agent
from lfs_agent.install import trust as trust_endpoint
from registry.errors import RegistryError
from registry.repo.gitrepo import GitRepo

GITATTRIBUTES = """\
# Checkpoints and other large files live in Git LFS (and so in S3 through lfs-s3-agent).
*.pth filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
"""

README = """\
# model-registry

Our trained models. Each version is a folder: `{algorithm}-{option}/{scope}/{version}/` holding
`config.yaml`, `checkpoint.pth`, `checkpoint.onnx` (optional) and `log.txt`.

- `pretrained/YYYY-MM-DD`: pretrained models, by date;
- `base/X.Y`: X changes when the application must change too, Y for new training settings or data;
- `{project}/X.Y.Z`: fine-tuned from `base/X.Y`, Z-th update.

Checkpoints are stored in Git LFS, with the objects in S3 (see `.lfsconfig`).

## Get the models

One time per machine: install lfs-s3-registry (not on PyPI: `pipx install "git+<its git URL>"`),
run `lfs-s3-agent install --global`, and have AWS credentials that can read the bucket
(`AWS_PROFILE`, `aws sso login`, ...); `lfs-s3-agent doctor` checks all of it. Then:

    git clone <this repository>                      # every version's checkpoints, or:
    GIT_LFS_SKIP_SMUDGE=1 git clone <this repository> && cd <its folder>
    git lfs pull --include "YOLOX-l/base/1.2/*"      # only one model

## Register a model

    model-registry next YOLOX-l/base --minor          # prints the next free version
    model-registry add YOLOX-l/base/1.3 --from path/to/run
    model-registry check && git commit -m "YOLOX-l base 1.3" && git push
"""


def lfsconfig_text(bucket: str, prefix: str) -> str:
    url = f"https://{agent_config.PLACEHOLDER_HOST}/{bucket}" + (f"/{prefix}" if prefix else "")
    return (
        "# Routes git-lfs to lfs-s3-agent and names the bucket and prefix of the LFS objects:\n"
        "#   https://lfs-s3.invalid/<bucket>/<prefix>\n"
        f"[lfs]\n\turl = {url}\n"
    )


def init_registry(
    path: Path,
    *,
    bucket: str,
    prefix: str = "model-registry",
    endpoint: str | None = None,
    region: str | None = None,
    addressing_style: str | None = None,
) -> list[str]:
    """Create or complete a registry at `path`; returns what was done, one line each.

    Raises:
        RegistryError: a setting is invalid, or git or the agent's install failed.
    """
    given = {
        "bucket": bucket,
        "prefix": prefix,
        "endpoint": endpoint,
        "region": region,
        "addressing-style": addressing_style,
    }
    values = {k: agent_config.Value(v, f"--{k}") for k, v in given.items() if v is not None}
    try:
        checked = agent_config.build(values)
    except AgentError as exc:
        raise RegistryError(str(exc)) from None
    report: list[str] = []
    repo = _repository(path, report)
    _write_files(repo, checked, addressing_style, report)
    _install_agent(path, checked, report)
    report.append(
        f"LFS objects go to s3://{checked.bucket}/"
        + (f"{checked.prefix}/" if checked.prefix else "")
        + "objects/"
    )
    return report


def _repository(path: Path, report: list[str]) -> GitRepo:
    """The repository at `path`, created if there is none; never one that `path` is inside."""
    if path.exists() and not path.is_dir():
        raise RegistryError(f"'{path}' is a file: pass a folder for the new registry")
    path.mkdir(parents=True, exist_ok=True)
    top = GitRepo.toplevel(path)
    if top is not None and top.resolve() != path.resolve():
        # git-lfs reads .lfsconfig only at a repository's root: a registry in a subfolder of
        # another repository would not route its objects anywhere.
        raise RegistryError(
            f"'{path}' is inside the git repository '{top}': a registry must "
            "be a repository of its own. Choose a folder outside it, or run 'model-registry "
            f"init' at '{top}' to make that repository the registry"
        )
    if top is not None:
        return GitRepo(path)
    repo = GitRepo.init(path)
    report.append(f"created a git repository in {path}")
    return repo


def _write_files(
    repo: GitRepo,
    checked: agent_config.AgentConfig,
    addressing_style: str | None,
    report: list[str],
) -> None:
    """Write the files a registry commits that are not there yet, and stage them."""
    settings = "".join(
        f"\t{key} = {value}\n"
        for key, value in (
            ("endpoint", checked.endpoint),
            ("region", checked.region),
            ("addressing-style", addressing_style),
        )
        if value
    )
    files = {
        ".gitattributes": GITATTRIBUTES,
        ".lfsconfig": lfsconfig_text(checked.bucket, checked.prefix),
        "README.md": README,
    }
    if settings:
        files[agent_config.COMMITTED_FILE] = "[lfs-s3]\n" + settings
    written = []
    for name, text in files.items():
        target = repo.root / name
        if target.exists():
            report.append(f"kept the existing {name}")
        else:
            target.write_text(text, encoding="utf-8")
            written.append(name)
    if written:
        # Staged, so that the next commit carries them: a clone without .lfsconfig and
        # .gitattributes would not know where the objects are or which files are in LFS.
        repo.add([Path(name) for name in written])
        report.append(f"wrote and staged {', '.join(written)}; commit them")


def _install_agent(path: Path, checked: agent_config.AgentConfig, report: list[str]) -> None:
    """Install the agent in the repository, and trust a plain-http endpoint chosen here."""
    try:
        changes = install_agent("local", path)
        trusted = (
            trust_endpoint("local", checked.endpoint, path)
            if checked.endpoint and checked.endpoint.startswith("http://")
            else None
        )
    except AgentError as exc:
        raise RegistryError(f"cannot install lfs-s3-agent in '{path}': {exc}") from None
    report.append(
        "installed lfs-s3-agent in this repository" + ("" if changes else " (already installed)")
    )
    if trusted is not None:
        # You chose it: this clone trusts it. Other clones are asked to ('lfs-s3-agent trust').
        report.append(f"trusted the plain-http endpoint {checked.endpoint} in this clone")
