"""What is published under an S3 root, from S3 alone: each model's versions, yanks and metrics
(`model-registry list --root-url s3://...`)."""

from __future__ import annotations

from dataclasses import dataclass

from registry.refs import ModelRef, parse_model_name, parse_version
from registry.releases.remote import RemoteRegistry


@dataclass(frozen=True)
class PublishedVersion:
    ref: ModelRef
    yanked: str | None  # the reason, when yanked
    metrics: dict[str, float]


def models(remote: RemoteRegistry) -> list[str]:
    """The models with an index under the root (just the root's model, when it names one)."""
    if remote.root.model is not None:
        return [remote.root.model]
    head = remote.root.index_key("x").rsplit("/", 2)[0] + "/"
    found: list[str] = []
    token = ""
    while True:
        # Pages by hand: the agent's client (the default) has no paginators.
        bucket = remote.root.bucket
        page = (
            remote.client.list_objects_v2(
                Bucket=bucket, Prefix=head, Delimiter="/", ContinuationToken=token
            )
            if token
            else remote.client.list_objects_v2(Bucket=bucket, Prefix=head, Delimiter="/")
        )
        for prefix in page.get("CommonPrefixes", []):
            name = prefix.get("Prefix", "")[len(head) :].rstrip("/")
            try:
                found.append(parse_model_name(name))
            except ValueError:
                continue  # not a model's folder: not ours to list
        token = str(page.get("NextContinuationToken", ""))
        if not page.get("IsTruncated") or not token:
            return sorted(found)


def published(remote: RemoteRegistry) -> list[PublishedVersion]:
    """Every published version in order, with its yank reason and its manifest's metrics."""
    out: list[PublishedVersion] = []
    for model in models(remote):
        index = remote.index(model)
        for scope, names in sorted(index.versions.items()):
            for name in names:
                ref = ModelRef(model=model, scope=scope, version=parse_version(scope, name))
                record = remote.manifest(ref).record
                out.append(
                    PublishedVersion(
                        ref,
                        index.yanked.get(f"{scope}/{name}"),
                        dict(record.metrics) if record else {},
                    )
                )
    return out
