"""The local cache of verified objects and version folders (`MODEL_REGISTRY_CACHE`)."""

from __future__ import annotations

from registry.cache.store import Cache, CacheEntry, CacheError, CorruptDownload, NotCached

__all__ = ["Cache", "CacheEntry", "CacheError", "CorruptDownload", "NotCached"]
