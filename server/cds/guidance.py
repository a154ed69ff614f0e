"""Guideline passages for cards, and how a card cites them.

The same served index the chat path uses (`server.guidelines.GuidelineLibrary`); the caller
takes its retriever once per hook call, so an index swap cannot split one response. All of a
call's searches run in one worker thread, one after another: embedding and FAISS are CPU
work that must stay off the event loop, and a handful of queries in a row is cheaper than a
thread each on a small machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from retrieval.search import Hit, Mode, Retriever
from server.cds.models import Link, Source


async def search_all(
    retriever: Retriever | None, queries: Sequence[str], k: int, mode: Mode
) -> list[list[Hit]]:
    """The passages for each query, in order (all empty when no index is loaded)."""
    if retriever is None or not queries:
        return [[] for _ in queries]

    def run() -> list[list[Hit]]:
        return [retriever.search(query, k, mode) for query in queries]

    return await asyncio.to_thread(run)


def counted(hits: Sequence[Hit]) -> str:
    """For a card's summary, e.g. "2 guideline passages cited"."""
    return f"{len(hits)} guideline passage{'s' if len(hits) != 1 else ''} cited"


def _absolute(url: str | None) -> str | None:
    return url if url is not None and url.startswith(("https://", "http://")) else None


def label(hit: Hit) -> str:
    """Document title and section, e.g. "Hypertension (NICE NG136) — Management"."""
    chunk = hit.chunk
    return f"{chunk.title} — {chunk.section}" if chunk.section else chunk.title


def source(hit: Hit) -> Source:
    return Source(label=label(hit), url=_absolute(hit.chunk.url))


def links(hits: Sequence[Hit]) -> list[Link]:
    """One absolute link per cited passage whose document has a URL."""
    out: list[Link] = []
    for hit in hits:
        url = _absolute(hit.chunk.url)
        if url is not None and all(link.url != url for link in out):
            out.append(Link(label=label(hit), url=url))
    return out


def cited(hits: Sequence[Hit], snippet_chars: int) -> str:
    """The passages as Markdown block quotes, each under its citation."""
    blocks = []
    for number, hit in enumerate(hits, start=1):
        text = hit.to_json(snippet_chars)["text"]
        quoted = "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())
        blocks.append(f"[{number}] **{_escape(label(hit))}**\n\n{quoted}")
    return "\n\n".join(blocks)


def _escape(text: str) -> str:
    return text.replace("*", r"\*").replace("_", r"\_")
