"""The operator's settings make kopf list in pages (nodes, Jobs, workloads), as costgov lists
pods itself (services/podwatch.py): no answer of thousands of objects is parsed whole.

kopf's own listing (kopf._cogs.clients.fetching.fetch_objs) is driven here against a fake
apiserver answering as the API reference describes chunked lists: `limit` caps the items,
`metadata.continue` carries the token for the next page and is "" on the last one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kopf
import pytest
from kopf._cogs.clients import api, fetching

from costgov.handlers.running import configure
from costgov.services.podwatch import PAGE
from costgov.settings import Settings


def _pod(i: int) -> dict[str, Any]:
    return {"metadata": {"name": f"p-{i}", "namespace": "ml", "uid": f"u-{i}"}}


def test_kopf_lists_in_pages_of_the_operators_size(monkeypatch: pytest.MonkeyPatch) -> None:
    pods = [_pod(i) for i in range(2 * PAGE + 7)]
    asked: list[dict[str, list[str]]] = []

    async def get(*, url: str, **_: Any) -> dict[str, Any]:
        query = parse_qs(urlsplit(url).query)
        asked.append(query)
        offset = int(query.get("continue", ["0"])[0])
        limit = int(query["limit"][0]) if "limit" in query else len(pods)
        page = pods[offset : offset + limit]
        more = offset + limit < len(pods)
        meta = {"resourceVersion": "42", "continue": str(offset + limit) if more else ""}
        return {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": page}

    monkeypatch.setattr(api, "get", get)
    settings = kopf.OperatorSettings()
    configure(settings, Settings())

    async def listed() -> list[int]:
        sizes = []
        async for chunk, version in fetching.fetch_objs(
            settings=settings,
            resource=kopf.Resource("", "v1", "pods", namespaced=True),
            namespace=None,
            logger=logging.getLogger("test"),
        ):
            assert version == "42"
            sizes.append(len(chunk))
        return sizes

    assert asyncio.run(listed()) == [500, 500, 7]  # 1,007 pods in pages of 500
    assert [q["limit"] for q in asked] == [["500"]] * 3
    assert [q.get("continue") for q in asked] == [None, ["500"], ["1000"]]
