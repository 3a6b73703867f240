-- Notifications through an outbox (docs/decisions/0022-notifications-through-an-outbox.md).
-- A notification is written in the same transaction as the audit event that causes it, so a
-- change is never committed without its notification, nor a notification without its change.
-- The worker fans each one out to the targets configured for it (one delivery per target) and
-- delivers them with retries; a delivery is kept until it is delivered or given up.
create table notification (
    notification_id bigserial primary key,
    audit_event_id bigint not null unique references audit_event (event_id),
    event text not null,
    request_id uuid references access_request (request_id),
    created_at timestamptz not null,
    fanned_out boolean not null default false
);

create index notification_to_fan_out on notification (notification_id) where not fanned_out;
create index notification_by_request on notification (request_id, notification_id);

create table notification_delivery (
    notification_id bigint not null references notification (notification_id) on delete cascade,
    -- `webhook:<digest of the URL>` or `slack:<channel>`: what it goes to, never a secret
    target text not null,
    attempts integer not null default 0,
    -- when it is next tried; while a replica delivers it, the end of that replica's lease
    next_attempt_at timestamptz not null,
    delivered_at timestamptz,
    given_up_at timestamptz,
    last_error text,
    -- what the target answered that later deliveries of the same request refer to (a Slack
    -- message's timestamp, to update it and answer in its thread)
    receipt text,
    primary key (notification_id, target)
);

create index notification_delivery_due on notification_delivery (next_attempt_at)
    where delivered_at is null and given_up_at is null;

-- The expiry a grant was last told about ("ends in 10 minutes"): an extension moves the
-- expiry, and so earns a new notice.
alter table access_request add column expiry_notice_for timestamptz;

-- Wakes the replicas' delivery loops when the transaction that enqueued a notification
-- commits (a rolled-back one wakes nobody); they also look every few seconds on their own.
create function notification_enqueued() returns trigger language plpgsql as $$
begin
    perform pg_notify('lakegate_outbox', '');
    return null;
end;
$$;

create trigger notification_wakes_delivery after insert on notification
    for each statement execute function notification_enqueued();

-- Who has signed in, as of their latest sign-in (or the latest time their identity provider
-- confirmed their groups): how a Slack user, known by a verified email, is found as a person.
create table person (
    subject text primary key,
    email text not null,
    name text,
    groups text[] not null,
    seen_at timestamptz not null
);

create index person_by_email on person (lower(email), seen_at desc);
