"""Durable records: projects, API keys, workflows, requests, attempts."""

from sluice.store.store import ApiKeyRecord, RequestRecord, Store

__all__ = ["ApiKeyRecord", "RequestRecord", "Store"]
