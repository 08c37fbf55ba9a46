"""The `action_logs` resource: each session's history, read incrementally under its own budget.

Entries are written once and never edited, so a session needs only what is newer than its
newest stored entry. That cursor lives in the destination, not in dlt's state (which stays the
size of the sessions' cursors): the table `action_log_cursors` has one row per session read,
loaded in the same package as its entries, so it moves only with committed entries. A session
that ended and was read after its end is `complete` and never read again.

Which sessions a chunk reads is the runner's to hand in (`chunking.Known.log_tasks`): running
ones first, then the backlog of sessions never read, at most `action_log_requests` requests a
run. Under the runner the logs wait until the sessions' walk and refresh are committed, so the
sessions come first and the sessions new in this run are read in the same run; a plain
`pipeline.run` reads the sessions stored before it.

The API's order of entries and its largest `limit` are unknown: the order is detected from the
first page with two entries (and kept per extension), a refused `limit` is lowered to what the
API names (and kept), as for the sessions.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, cast

import dlt
from dlt.sources import DltResource

from . import interrupts
from .chunking import RunControl, active_run, client_for, known_for, plain_run
from .client import PageSizeRejectedError
from .paging import PageSize
from .privacy import scrub_user
from .schema import ACTION_LOGS, LOG_COLUMNS, LOG_CURSOR_COLUMNS, LOG_CURSORS
from .settings import MAX_PAGE_SIZE, Settings
from .state import LogTask, ResourceState

# of an entry's `user` (a person's whole public profile), what names them: the rest of the
# profile is in `sessions` already, once per session rather than once per entry
LOG_USER_FIELDS = ("_id", "username")


def logs_resource(settings: Settings) -> DltResource:
    """The resource, merged on `log_id`; its cursors go to `action_log_cursors`."""

    # the hints go with each item (see `_entries`, `_cursor_row`), not on the resource: a
    # resource's own columns would be merged into the cursors' table too
    @dlt.resource(name=ACTION_LOGS, write_disposition="merge")
    def action_logs() -> Iterator[Any]:
        """Entries newer than each session's stored ones, and the session's new cursor."""
        run = active_run() or plain_run()
        state = cast(ResourceState, dlt.current.resource_state())
        state["pending"] = False
        known = known_for(run, settings)
        if known.log_tasks is None:  # the sessions of this run are not committed yet
            state["pending"] = True
            return
        reader = LogReader(settings, run, state)
        interrupts.begin_fetching()
        try:
            done = yield from reader.read(known.log_tasks)
            state["pending"] = not done
        finally:
            interrupts.end_fetching()

    return action_logs


class LogReader:
    """One chunk's reading of logs: the tasks in order until the budget or the chunk is spent."""

    def __init__(self, settings: Settings, run: RunControl, state: ResourceState) -> None:
        self.settings, self.run, self.state = settings, run, state
        self.page = PageSize.from_setting(None, state)
        self.client = client_for(run, settings)
        self.stop = run.stop(settings.chunk_pages, settings.chunk_seconds)
        self.orders: dict[str, str] = state.setdefault("orders", {})  # type: ignore[typeddict-item]

    def budget_left(self) -> int:
        return self.settings.action_log_requests - self.run.counts.log_requests

    def read(self, tasks: list[LogTask]) -> Generator[Any, None, bool]:
        """Entries and cursors of `tasks` in turn; returns True when this run has no more to
        read (every task done, or the budget spent), False when the chunk ended first."""
        figures = self.run.logs
        for task in tasks:
            if task.session_id in self.run.logs_read:
                continue
            if self.budget_left() <= 0:
                return True
            if self.stop is not None and self.stop.reached():
                return False
            self.client.counts.slug = task.slug
            entries, cursor = self.session(task)
            self.run.logs_read.add(task.session_id)
            if entries:
                yield _hinted(entries, ACTION_LOGS, "log_id", LOG_COLUMNS)
            if cursor is not None:
                yield _hinted([cursor], LOG_CURSORS, "session_id", LOG_CURSOR_COLUMNS)
            figures.sessions += 1
        return True

    def session(self, task: LogTask) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The new entries of one session and its cursor row (None: the cursor stays, because
        the budget ran out before the read reached the stored entries)."""
        order = self.orders.get(task.slug)
        last_id = task.newest if order == "asc" else None
        newest = task.newest
        found: list[dict[str, Any]] = []
        reached = False
        while True:
            page = self._page(task.session_id, last_id)
            if page is None:  # the API has no such session: nothing more will come
                self.run.logs.gone += 1
                return [], self._cursor(task, task.newest, complete=True, gone=True)
            results = [entry for entry in page["results"] if isinstance(entry, dict)]
            if self.stop is not None:  # a chunk holds about as many rows as one of sessions
                self.stop.pages += len(results) / MAX_PAGE_SIZE
            order = order or self._order_of(task.slug, results)
            for entry in results:
                entry_id = str(entry.get("_id"))
                if task.newest is not None and entry_id <= task.newest:
                    reached = order != "asc"  # newest first: the rest is stored already
                    continue
                found.append(self._row(task, entry))
                newest = entry_id if newest is None or entry_id > newest else newest
            if reached or not page.get("hasMore") or not results:
                break
            if self.budget_left() <= 0:  # cut short: keep what came
                self.run.logs.entries += len(found)
                if order == "asc":  # everything up to the last entry read is stored now
                    return found, self._cursor(task, newest, complete=False)
                return found, None  # newest first: the gap below is read again next time
            last_id = str(results[-1].get("_id"))
        self.run.logs.entries += len(found)
        return found, self._cursor(task, newest, complete=task.ended)

    def _page(self, session_id: str, last_id: str | None) -> dict[str, Any] | None:
        while True:
            try:
                page = self.client.logs(
                    session_id, self.settings.action_log_role, self.page.size, last_id
                )
            except PageSizeRejectedError as rejected:
                self.page.shrink(rejected)
                continue
            self.page.remember(self.state)
            return page

    def _order_of(self, slug: str, results: list[dict[str, Any]]) -> str | None:
        """The order a page shows (ids are creation-ordered), kept per extension once seen."""
        ids = [str(entry.get("_id")) for entry in results]
        if len(set(ids)) < 2:
            return None
        order = "desc" if ids[0] > ids[-1] else "asc"
        self.orders[slug] = order
        self.run.logs.order = dict(self.orders)
        return order

    def _row(self, task: LogTask, entry: dict[str, Any]) -> dict[str, Any]:
        row = {"log_id": entry.get("_id"), "session_id": task.session_id}
        row.update((key, value) for key, value in entry.items() if key != "_id")
        user = row.pop("user", None)
        if isinstance(user, dict):  # who it was; their profile is the sessions' to keep
            who = {field: user[field] for field in LOG_USER_FIELDS if field in user}
            row["user"] = scrub_user(
                who, privacy=self.settings.privacy, key=self.settings.pseudonym_key
            )
        return row

    def _cursor(
        self, task: LogTask, newest: str | None, *, complete: bool, gone: bool = False
    ) -> dict[str, Any]:
        return {
            "session_id": task.session_id,
            "slug": task.slug,
            "newest_log_id": newest,
            "complete": complete,
            "gone": gone,
            "session_status": task.status,
            "read_at": self.run.noticed_at,
        }


def _hinted(rows: list[dict[str, Any]], table: str, key: str, columns: dict[str, Any]) -> Any:
    """`rows` for `table`, merged on `key`, with its typed columns."""
    hints = dlt.mark.make_hints(
        table_name=table, primary_key=key, write_disposition="merge", columns=cast(Any, columns)
    )
    return dlt.mark.with_hints(rows, hints, create_table_variant=True)
