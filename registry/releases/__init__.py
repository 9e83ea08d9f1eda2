"""Published releases: a registry's versions in S3, readable without git.

- `formats`: the JSON documents (manifests, per-model indexes) and the S3 key layout;
  `publish` (with `prepublish`, `indexwrite`): writing them; `published`: listing them.
- `remote`: resolving a selector against S3; `s3fetch`: downloads through the agent's engine;
  `storeerrors`: S3 failures in the registry's words.
"""
