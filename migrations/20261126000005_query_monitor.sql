-- The query monitor: every Athena query of a grant's workgroup, stored once and updated as it
-- progresses, and what the budget rule has done to the grant so far.

create table athena_query (
    request_id uuid not null references access_request (request_id),
    query_id text not null,
    sql_text text not null,
    database_name text,
    state text not null check (state in ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    state_change_reason text,
    bytes_scanned bigint not null default 0 check (bytes_scanned >= 0),
    -- as Athena bills: rounded up per MB, at least 10 MB, failed queries nothing
    billed_bytes bigint not null default 0 check (billed_bytes >= 0),
    cost_micros bigint not null default 0 check (cost_micros >= 0),
    engine_ms bigint not null default 0,
    submitted_at timestamptz,
    completed_at timestamptz,
    first_seen_at timestamptz not null,
    updated_at timestamptz not null,
    primary key (request_id, query_id)
);

create index athena_query_by_submission on athena_query (request_id, submitted_at);

alter table access_request
    -- when the 80 % warning was given (once)
    add column budget_warned_at timestamptz,
    -- the cutoff the workgroup has now, once the budget lowered it
    add column workgroup_cutoff_bytes bigint check (workgroup_cutoff_bytes >= 10000000);
