"""The git-backed registry: a repository's folders, files and rules.

- `gitrepo`: the one module that runs git; `layout`: what a version folder holds, read from a
  checkout or a revision; `location`, `detect`: which folder is a registry, and which model a
  path names; `pointer`: Git LFS pointer files; `settings`: `model-registry.toml`.
- `checks`, `unstaged`: the registry's rules (`model-registry check`); `add`, `init`, `plan`:
  writing a new version, a new registry, and choosing the next free version.
"""
