"""The `sessions` resource: a short loop over the cursors, one chunk per extraction.

For each (extension, status) cursor of the source, in turn: the walk of new sessions from the
stored cursor (fetched ahead on a thread, `prefetch.py`), then what `plan.follow_up` says follows
it (the periodic sweep, the refresh of what was running, or nothing). When the runner's chunk is
full the extraction returns `ChunkEnd.FULL`, the one value that says the next chunk goes on; the
cursors stand where the committed pages put them.

The resource never opens the destination: what it needs from there (the running sessions, the
stored rows of `--session-id`) is read by the runner before each chunk and handed in
(`chunking.Known`).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from enum import Enum
from functools import partial
from typing import Any, TypeVar, cast

import dlt
from dlt.sources import DltResource

from . import interrupts
from .chunking import RunControl, active_run, client_for, known_for, plain_run
from .client import Session
from .cursor import CursorRun
from .paging import Cursor, PageSize, WalkResult, walk_new_sessions
from .plan import FollowUp, follow_up, sweep_due
from .prefetch import Prefetcher
from .privacy import scrub
from .refresh import refresh
from .repair import reread_sessions
from .schema import SESSIONS, ColumnDescriptions, drop_null_objects, forget_empty_descriptions
from .settings import Settings
from .state import ResourceState
from .sweep import sweep

T = TypeVar("T")
Pages = Generator[Any, None, "ChunkEnd"]  # pages for dlt; returns how the chunk ended


class ChunkEnd(Enum):
    FULL = "full"  # the runner's chunk is full: the next chunk goes on from here
    DONE = "done"  # every cursor of the source is complete for this run


def sessions_resource(settings: Settings) -> DltResource:
    """The resource, merged on `sessionId` (a re-read session replaces its old rows)."""

    @dlt.resource(name=SESSIONS, primary_key="sessionId", write_disposition="merge")
    def sessions() -> Iterator[Any]:
        """New sessions since the stored cursor, then the re-read ones."""
        run = active_run() or plain_run()
        chunk = Chunk(settings, run, cast(ResourceState, dlt.current.resource_state()))
        chunk.state["pending"] = False
        interrupts.begin_fetching()  # a signal stops the fetching at once
        try:
            ended = yield from chunk.pages()
            chunk.state["pending"] = ended is ChunkEnd.FULL
        finally:
            interrupts.end_fetching()
            if not run.chunked:
                run.close()

    if settings.schema_contract != "evolve":
        sessions.apply_hints(schema_contract=cast(Any, settings.schema_contract))
    sessions.chaster_settings = settings  # type: ignore[attr-defined] # read by `settings_of`
    return sessions


def settings_of(source: Any) -> Settings | None:
    """The settings of a `chaster_source` (or of its `sessions` resource, passed alone), for
    the runner to read what its chunks need."""
    resources = getattr(source, "resources", None)
    resource = resources.get(SESSIONS) if resources is not None else source
    return getattr(resource, "chaster_settings", None)


class Chunk:
    """One extraction of the resource: this chunk's state, client, page size and stop."""

    def __init__(self, settings: Settings, run: RunControl, state: ResourceState) -> None:
        run.extractions += 1
        self.settings, self.run, self.state = settings, run, state
        self.known = known_for(run, settings)
        self.page = PageSize.from_setting(settings.page_size, state)
        self.client = client_for(run, settings)
        self.stop = run.stop(settings.chunk_pages, settings.chunk_seconds)
        forget_empty_descriptions(dlt.current.source_schema())
        self.descriptions = ColumnDescriptions()

    def keep(self, session: Session) -> Session:
        """What is stored of a session: credentials and people as the privacy settings say."""
        s = self.settings
        kept = scrub(
            session, privacy=s.privacy, store_credentials=s.store_credentials, key=s.pseudonym_key
        )
        return drop_null_objects(kept)

    def full(self) -> bool:
        return self.stop is not None and self.stop.reached()

    def pages(self) -> Pages:
        if self.settings.session_ids:
            if not set(self.settings.session_ids) <= self.run.session_repairs.keys():
                yield from self.reread(self.settings.session_ids)  # once, not in each chunk
            return ChunkEnd.DONE
        for slug in self.settings.slugs:
            cursor = self.run.cursor(slug, self.settings.status)
            if cursor.completed:
                continue
            if self.full():
                return ChunkEnd.FULL
            self.client.counts.slug = slug
            cursor.bind(self.state)
            if not cursor.begun:
                running = self.known.running.get(slug, {})
                cursor.begin(
                    running, full_refresh=self.settings.full_refresh, started_at=self.run.started_at
                )
            if (yield from self.walk(cursor)) is ChunkEnd.FULL:
                return ChunkEnd.FULL
            if (yield from self.follow(cursor)) is ChunkEnd.FULL:
                return ChunkEnd.FULL
            cursor.completed = True
        return ChunkEnd.DONE

    def walk(self, cursor: CursorRun) -> Pages:
        """New sessions from the stored cursor; the cursor moves with each page handed over."""
        while not cursor.walked:
            fetcher = cursor.fetch(partial(self._fetch_ahead, cursor))
            for fetched in fetcher.pages():
                for session in fetched.sessions:
                    self.keep(session)
                    cursor.saw(session)
                cursor.moved(fetched.cursor)
                self.page.remember(self.state)
                yield self.descriptions.hinted(fetched.sessions)
                self.run.fetched += len(fetched.sessions)
                if self.run.observer is not None:
                    self.run.observer.progress(
                        cursor.slug, self.run.fetched, self.run.counts, fetched.count or 0
                    )
                if self.stop is not None:
                    self.stop.pages += 1
                    waiting = fetcher.waiting() and self.client.limiter.holding()
                    if self.stop.reached(waiting) and not fetcher.done_next():
                        return ChunkEnd.FULL  # the fetcher goes on meanwhile
            cursor.walk_finished()
            self.page.remember(self.state)
        return ChunkEnd.DONE

    def _fetch_ahead(self, cursor: CursorRun, position: Cursor) -> Prefetcher:
        """The walk from `position`, fetching on a thread while dlt works."""
        query, order = (cursor.slug, cursor.status), self.settings.sort_order

        def walk(at: Cursor, result: WalkResult) -> Iterator[list[Session]]:
            return walk_new_sessions(self.client, at, query, self.page, order, result)

        return Prefetcher(walk, position)

    def follow(self, cursor: CursorRun) -> Pages:
        """What follows a complete walk (`plan.follow_up`)."""
        s, now = self.settings, self.run.started_at
        due = sweep_due(cursor.entry, s.full_sweep_every_days, now)
        if s.sweeps and not due:
            cursor.start_clock(now)
        action = follow_up(
            status=s.status,
            refresh=s.refresh,
            full_refresh=s.full_refresh,
            first_load=cursor.first_load,
            sweep_due=due,
        )
        if action is FollowUp.SWEPT:
            cursor.swept(now)  # this walk saw every session
        elif action is FollowUp.SWEEP:
            if self.full():
                return ChunkEnd.FULL
            pages = sweep(self.client, cursor, due or "", self.page, self.stop, now)
            swept = yield from self.kept(pages)
            if not swept:
                return ChunkEnd.FULL
        elif action is FollowUp.REFRESH:
            yield from self.kept(refresh(self.client, cursor, self.page, self.run.noticed_at, now))
        return ChunkEnd.DONE

    def kept(self, pages: Generator[list[Session], None, T]) -> Generator[Any, None, T]:
        """`pages` as stored (`keep`, with their column hints); returns what `pages` returns.
        The page size a page made the walk learn is kept for later runs."""
        while True:
            try:
                page = next(pages)
            except StopIteration as end:
                return cast(T, end.value)
            self.page.remember(self.state)
            yield self.descriptions.hinted([self.keep(session) for session in page])
            self.run.fetched += len(page)  # re-read sessions count in the progress line too

    def reread(self, session_ids: tuple[str, ...]) -> Iterator[Any]:
        """`--session-id`: one GET each, nothing else (`repair.py`)."""

        def cursor_of(slug: str, create: bool) -> CursorRun:
            cursor = self.run.cursor(slug, self.settings.status)
            cursor.bind(self.state, create=create)
            return cursor

        found = reread_sessions(
            self.client, session_ids, self.known.stored, cursor_of, self.run.noticed_at
        )
        for session_id, what, fresh in found:
            self.run.session_repairs[session_id] = what
            if fresh is not None:
                yield self.descriptions.hinted([self.keep(fresh)])
