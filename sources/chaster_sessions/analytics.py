"""The `analytics` schema: SQL views that answer an extension developer's questions.

The raw tables follow the API's nesting (`lock__keyholder__username`, JSON `config`, child tables
per list). These views give the answers plain names and stated units. Only `analytics.sessions`
reads raw columns; every other view builds on it. A raw column that does not exist (yet) reads
as NULL, so a small dataset without shared locks, pseudonymous mode, or a new API field never
breaks them. They are written once, in DuckDB SQL, and transpiled with sqlglot for PostgreSQL;
the one piece sqlglot cannot translate (reading a JSON object's keys) is written per dialect. They
read the dataset named when they are created and are re-created after every successful load.

Test locks are left out of every aggregate (`daily`, `outcomes`, `co_extensions`,
`config_values`, `wearers`, `action_types`, `weekly_actions`, `time_changes`; `overview` counts
them apart); `analytics.sessions` and `analytics.actions` keep them, flagged. Sessions the API no
longer has (`removed_at` set) are likewise left out of aggregates.

The action-log views (`actions` and the three built on it) read `action_logs`, which exists only
once a run loaded logs (setting `action_logs`); without it they exist, empty, with the same
columns, so a query or the report page never has to ask first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlglot

SCHEMA = "analytics"

# destination type -> the SQL dialect its views are written in; other destinations get none
DIALECTS = {"duckdb": "duckdb", "motherduck": "duckdb", "postgres": "postgres"}

# Every raw column analytics.sessions reads, with the type it has when it exists.
RAW_COLUMNS = {
    "session_id": "varchar",
    "slug": "varchar",
    "lock__status": "varchar",
    "mode": "varchar",
    "regularity": "bigint",
    "lock__start_date": "timestamptz",
    "lock__unlocked_at": "timestamptz",
    "lock__archived_at": "timestamptz",
    "lock__keyholder___id": "varchar",
    "lock__keyholder__username": "varchar",
    "lock__shared_lock___id": "varchar",
    "lock__shared_lock__name": "varchar",
    "lock__user___id": "varchar",
    "lock__user__username": "varchar",
    "lock__is_test_lock": "boolean",
    "removed_at": "timestamptz",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "config": "json",
    "data": "json",
    "_dlt_id": "varchar",
}

SESSIONS = """
create or replace view analytics.sessions as
with raw as (
    select
        {session_id} as session_id,
        {slug} as extension,
        {lock__status} as status,
        {mode} as mode,
        {regularity} / 3600.0 as regularity_hours,
        {lock__start_date} as started_at,
        case when {lock__status} <> 'locked'
            then coalesce({lock__unlocked_at}, {lock__archived_at}) end as ended_at,
        {lock__keyholder___id} as keyholder_id,
        {lock__keyholder__username} as keyholder,
        {lock__shared_lock___id} is not null as is_shared_lock,
        {lock__shared_lock__name} as shared_lock_name,
        {lock__user___id} as wearer_id,
        {lock__user__username} as wearer,
        coalesce({lock__is_test_lock}, false) as is_test_lock,
        {removed_at} is not null as is_removed,
        {removed_at} as removed_at,
        {created_at} as created_at,
        {updated_at} as updated_at,
        {config} as config,
        {data} as data,
        {_dlt_id} as _dlt_id
    from __DATASET__.sessions
)
select
    session_id, extension, status, status = 'locked' as is_running, mode, regularity_hours,
    case when keyholder_id is null then 'self-lock' else 'keyholder' end as lock_type,
    is_shared_lock, shared_lock_name, wearer_id, wearer, keyholder_id, keyholder,
    started_at, ended_at,
    (epoch(coalesce(ended_at, current_timestamp)) - epoch(started_at)) / 3600.0
        as duration_hours,
    (epoch(coalesce(ended_at, current_timestamp)) - epoch(started_at)) / 86400.0
        as duration_days,
    is_test_lock, is_removed, removed_at, created_at, updated_at, config, data, _dlt_id
from raw
"""


def ratio(part: str, whole: str) -> str:
    """part / whole as a double rounded to 4 places, NULL when whole is 0. Rounded as a decimal:
    PostgreSQL has no round(double, places), and both databases then agree to the last place."""
    return f"cast(round(cast({part} as decimal(38, 10)) / nullif({whole}, 0), 4) as double)"


# what the aggregates count: real locks the API still has
COUNTED = "(select * from analytics.sessions where not is_test_lock and not is_removed)"

DAILY = f"""
create or replace view analytics.daily as
with s as {COUNTED},
starts as (
    select extension, cast(timezone('UTC', started_at) as date) as day, count(*) as n
    from s where started_at is not null
    group by extension, cast(timezone('UTC', started_at) as date)
),
ends as (
    select extension, cast(timezone('UTC', ended_at) as date) as day,
        count(*) filter (where status = 'unlocked') as unlocked,
        count(*) filter (where status = 'deserted') as deserted
    from s where ended_at is not null
    group by extension, cast(timezone('UTC', ended_at) as date)
),
first_days as (select extension, min(day) as first_day from starts group by extension),
days as (
    select f.extension, cast(g.day as date) as day
    from first_days f, generate_series(
        cast(f.first_day as timestamp),
        cast(cast(timezone('UTC', current_timestamp) as date) as timestamp),
        interval 1 day
    ) as g(day)
)
select
    d.extension,
    d.day,
    coalesce(st.n, 0) as started,
    coalesce(e.unlocked, 0) as unlocked,
    coalesce(e.deserted, 0) as deserted,
    cast(sum(coalesce(st.n, 0) - coalesce(e.unlocked, 0) - coalesce(e.deserted, 0))
        over (partition by d.extension order by d.day) as bigint) as running_at_end_of_day
from days d
left join starts st using (extension, day)
left join ends e using (extension, day)
"""

DESERTED_SHARE = ratio(
    "count(*) filter (where status = 'deserted')", "count(*) filter (where status <> 'locked')"
)

OUTCOMES = f"""
create or replace view analytics.outcomes as
with s as {COUNTED}
select
    extension,
    case when grouping(mode) = 0 then 'mode' else 'lock_type' end as dimension,
    coalesce(case when grouping(mode) = 0 then mode else lock_type end, '(none)') as value,
    count(*) as sessions,
    count(*) filter (where status = 'locked') as running,
    count(*) filter (where status = 'unlocked') as unlocked,
    count(*) filter (where status = 'deserted') as deserted,
    {DESERTED_SHARE} as deserted_share,
    quantile_cont(duration_hours, 0.5) filter (where status <> 'locked')
        as median_duration_hours,
    quantile_cont(duration_hours, 0.9) filter (where status <> 'locked')
        as p90_duration_hours
from s
group by grouping sets ((extension, mode), (extension, lock_type))
"""

CO_EXTENSIONS = f"""
create or replace view analytics.co_extensions as
with s as {COUNTED},
totals as (select extension, count(*) as n from s group by extension)
select
    s.extension,
    e.slug as other_extension,
    min(e.display_name) as other_name,
    count(distinct s.session_id) as sessions,
    {ratio("count(distinct s.session_id)", "t.n")} as share_of_sessions
from s
join __DATASET__.sessions__lock__extensions e on e._dlt_root_id = s._dlt_id
join totals t on t.extension = s.extension
where e.slug <> s.extension
group by s.extension, e.slug, t.n
"""

CO_EXTENSIONS_EMPTY = """
create or replace view analytics.co_extensions as
select cast(null as varchar) as extension, cast(null as varchar) as other_extension,
    cast(null as varchar) as other_name, cast(0 as bigint) as sessions,
    cast(null as double) as share_of_sessions
where false
"""

CONFIG_VALUES = f"""
create or replace view analytics.config_values as
with s as {COUNTED},
totals as (select extension, count(*) as n from s group by extension)
select
    st.extension, st.setting, st.value,
    count(*) as sessions,
    {ratio("count(*)", "t.n")} as share_of_sessions
from __CONFIG_ENTRIES__ st join totals t on t.extension = st.extension
group by st.extension, st.setting, st.value, t.n
"""

# (extension, setting, value) per top-level key of each counted session's own `config`: strings
# as their text, everything else as compact JSON. sqlglot has no translation for DuckDB's
# json_each, so this part is written per dialect. jsonb keeps no key order or spacing: the
# PostgreSQL version strips the spaces jsonb prints (outside strings), and objects nested in a
# value list their keys in jsonb's order (shorter keys first).
CONFIG_ENTRIES = {
    "duckdb": """(
    select s.extension, j.key as setting,
        case when j.type = 'VARCHAR' then j.value ->> '$' else cast(j.value as varchar) end
            as value
    from s, json_each(s.config) j
    where json_type(s.config) = 'OBJECT'
)""",
    "postgres": """(
    select s.extension, j.key as setting,
        case when jsonb_typeof(j.value) = 'string' then j.value #>> '{}'
            else regexp_replace(cast(j.value as text), '("(?:[^"\\\\]|\\\\.)*")|([,:]) ',
                '\\1\\2', 'g') end as value
    from s cross join lateral jsonb_each(case when jsonb_typeof(cast(s.config as jsonb))
        = 'object' then cast(s.config as jsonb) else cast('{}' as jsonb) end) as j
)""",
}

WEARERS = f"""
create or replace view analytics.wearers as
with s as {COUNTED}
select
    extension,
    wearer_id,
    min(wearer) as wearer,
    count(*) as sessions,
    min(started_at) as first_started_at,
    max(started_at) as last_started_at,
    count(*) > 1 as is_returning
from s
where wearer_id is not null
group by extension, wearer_id
"""

OVERVIEW = """
create or replace view analytics.overview as
select
    extension,
    count(*) filter (where not is_test_lock and not is_removed) as sessions,
    count(*) filter (where status = 'locked' and not is_test_lock and not is_removed)
        as running,
    count(*) filter (where status = 'unlocked' and not is_test_lock and not is_removed)
        as unlocked,
    count(*) filter (where status = 'deserted' and not is_test_lock and not is_removed)
        as deserted,
    count(distinct wearer_id) filter (where not is_test_lock and not is_removed) as wearers,
    count(*) filter (where is_test_lock and not is_removed) as test_locks,
    count(*) filter (where is_removed) as removed,
    min(started_at) as first_started_at,
    max(started_at) as last_started_at
from analytics.sessions
group by extension
"""

# Every raw column analytics.actions reads from `action_logs`, with its type.
LOG_COLUMNS = {
    "log_id": "varchar",
    "session_id": "varchar",
    "created_at": "timestamptz",
    "type": "varchar",
    "role": "varchar",
    "prefix": "varchar",
    "title": "varchar",
    "payload": "json",
    "user___id": "varchar",
    "user__username": "varchar",
}
# no `action_logs` table (logs never loaded): a source of no rows, every column a typed NULL
NO_LOGS = "(select 1 as nothing where false) as nothing"

# `payload.duration` of a time_changed entry, in whole seconds; any other value (missing, text)
# reads as NULL rather than failing every query of the view. PostgreSQL stores the payload as
# jsonb, which its `->>` translation (json_extract_path_text) does not take: hence the cast.
SECONDS_CHANGED = """case when r.type = 'time_changed'
        and regexp_matches(cast(r.payload as json) ->> 'duration', '^-?[0-9]+([.][0-9]+)?$')
        then cast(round(cast(cast(r.payload as json) ->> 'duration' as double)) as bigint) end"""

ACTIONS = f"""
create or replace view analytics.actions as
with raw as (
    select
        {{log_id}} as log_id,
        {{session_id}} as session_id,
        {{created_at}} as created_at,
        {{type}} as type,
        {{role}} as role,
        {{prefix}} as prefix,
        {{title}} as title,
        {{payload}} as payload,
        {{user___id}} as user_id,
        {{user__username}} as username
    from __ACTION_LOGS__
)
select
    r.log_id, r.session_id, s.extension,
    cast(timezone('UTC', r.created_at) as date) as day,
    cast(date_trunc('week', cast(timezone('UTC', r.created_at) as timestamp)) as date) as week,
    r.created_at, r.type, r.role, r.prefix,
    coalesce(r.role = 'extension' or r.prefix = s.extension, false) as is_extension_action,
    {SECONDS_CHANGED} as seconds_changed,
    r.user_id, r.username, s.wearer_id, r.title, r.payload,
    coalesce(s.is_test_lock, false) as is_test_lock,
    coalesce(s.is_removed, false) as is_removed
from raw r
left join analytics.sessions s on s.session_id = r.session_id
"""

# what the action aggregates count: entries of real locks the API still has
COUNTED_ACTIONS = "(select * from analytics.actions where not is_test_lock and not is_removed)"

ACTION_TYPES = f"""
create or replace view analytics.action_types as
with a as {COUNTED_ACTIONS}
select
    extension, type,
    count(*) as entries,
    count(distinct session_id) as sessions,
    count(distinct wearer_id) as wearers,
    count(*) filter (where is_extension_action) as extension_entries,
    min(created_at) as first_at,
    max(created_at) as last_at
from a
group by extension, type
"""

WEEKLY_ACTIONS = f"""
create or replace view analytics.weekly_actions as
with a as {COUNTED_ACTIONS}
select
    extension, week, type,
    count(*) as entries,
    count(distinct session_id) as sessions,
    cast(coalesce(sum(seconds_changed) filter (where seconds_changed > 0), 0) as bigint)
        as seconds_added,
    cast(coalesce(-sum(seconds_changed) filter (where seconds_changed < 0), 0) as bigint)
        as seconds_removed
from a
group by extension, week, type
"""

TIME_CHANGES = f"""
create or replace view analytics.time_changes as
with a as {COUNTED_ACTIONS}
select
    extension, session_id,
    min(wearer_id) as wearer_id,
    count(*) as changes,
    count(*) filter (where is_extension_action) as extension_changes,
    cast(coalesce(sum(seconds_changed) filter (where seconds_changed > 0), 0) as bigint)
        as seconds_added,
    cast(coalesce(-sum(seconds_changed) filter (where seconds_changed < 0), 0) as bigint)
        as seconds_removed,
    cast(sum(seconds_changed) as bigint) as seconds_net,
    cast(coalesce(sum(seconds_changed) filter (where is_extension_action), 0) as bigint)
        as extension_seconds_net,
    min(created_at) as first_changed_at,
    max(created_at) as last_changed_at
from a
where seconds_changed is not null
group by extension, session_id
"""

VIEWS = (
    "sessions",
    "daily",
    "outcomes",
    "co_extensions",
    "config_values",
    "wearers",
    "overview",
    "actions",
    "action_types",
    "weekly_actions",
    "time_changes",
)


class _Column(dict[str, str]):
    """Formats `{name}` as the quoted raw column, or as a typed NULL when it does not exist."""

    def __init__(self, present: Iterable[str], types: dict[str, str] = RAW_COLUMNS) -> None:
        super().__init__()
        self.present, self.types = set(present), types

    def __missing__(self, name: str) -> str:
        if name in self.present:
            return f'"{name}"'
        return f"cast(null as {self.types[name]})"


def statements(
    columns: dict[str, set[str]], dataset: str = "chaster", dialect: str = "duckdb"
) -> list[str]:
    """The DDL for every view in `dialect` ("duckdb" or "postgres"), given the raw tables'
    columns (table -> column names) and the dataset (schema) that holds them."""
    sessions_sql = SESSIONS.format_map(_Column(columns.get("sessions", set())))
    children = columns.get("sessions__lock__extensions", set())
    co_extensions = (
        CO_EXTENSIONS
        if {"slug", "display_name", "_dlt_root_id"} <= children
        else CO_EXTENSIONS_EMPTY
    )
    quoted = '"' + dataset.replace('"', '""') + '"'
    logs = columns.get("action_logs")
    actions = ACTIONS.format_map(_Column(logs or set(), LOG_COLUMNS)).replace(
        "__ACTION_LOGS__", "__DATASET__.action_logs" if logs is not None else NO_LOGS
    )
    written = [
        f"create schema if not exists {SCHEMA}",
        sessions_sql,
        DAILY,
        OUTCOMES,
        co_extensions,
        CONFIG_VALUES,
        WEARERS,
        OVERVIEW,
        actions,
        ACTION_TYPES,
        WEEKLY_ACTIONS,
        TIME_CHANGES,
    ]
    if dialect != "duckdb":
        written = [sqlglot.transpile(sql, read="duckdb", write=dialect)[0] for sql in written]
        # a view whose columns change type cannot be replaced there: drop them, newest first
        drops = [f"drop view if exists {SCHEMA}.{name}" for name in reversed(VIEWS)]
        written = written[:1] + drops + written[1:]
    return [
        sql.replace("__DATASET__", quoted).replace("__CONFIG_ENTRIES__", CONFIG_ENTRIES[dialect])
        for sql in written
    ]


def create_views(
    execute: Callable[[str], Any],
    columns: dict[str, set[str]],
    dataset: str = "chaster",
    dialect: str = "duckdb",
) -> list[str]:
    """Create or replace the views over `dataset` (the caller runs this in one transaction);
    return their names. Nothing to do before the first load has created `<dataset>.sessions`."""
    if "sessions" not in columns:
        return []
    for sql in statements(columns, dataset, dialect):
        execute(sql)
    return [f"{SCHEMA}.{name}" for name in VIEWS]
