-- Hash-chain the audit trail: every event carries the hash of the one before it, and its own
-- hash covers that and all of its fields. Changing, inserting or deleting a row in the middle
-- breaks the chain, and `lakegate audit verify` names the first broken row.

alter table audit_event add column prev_hash bytea, add column hash bytea;

-- Ids are handed out inside the chaining trigger, under its lock, so that id order is chain
-- order. (An identity default is evaluated before BEFORE triggers run: two concurrent inserts
-- could take ids in one order and the lock in the other.)
alter table audit_event alter column event_id drop identity if exists;
create sequence audit_event_id_seq owned by audit_event.event_id;
select setval('audit_event_id_seq', coalesce((select max(event_id) from audit_event), 0) + 1, false);

-- The canonical form of an event, hashed with the previous hash. jsonb's text form is
-- normalised by PostgreSQL (key order, spacing), so it is stable.
create function audit_event_digest(prev bytea, e audit_event) returns bytea
language sql immutable as $$
    select sha256(
        prev || convert_to(
            concat_ws(
                E'\x1f',
                e.event_id::text,
                to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                coalesce(e.request_id::text, ''),
                coalesce(e.actor_subject, ''),
                coalesce(e.actor_email, ''),
                e.action,
                e.detail::text
            ),
            'UTF8'
        )
    )
$$;

-- Chains every new row, whichever code inserts it. The advisory lock (held to commit)
-- serialises appends, so two transactions can never both extend the same head, and the id is
-- taken under it.
create function audit_event_chain() returns trigger language plpgsql as $$
declare
    head bytea;
begin
    perform pg_advisory_xact_lock(7263514201);
    new.event_id := nextval('audit_event_id_seq');
    select hash into head from audit_event order by event_id desc limit 1;
    new.prev_hash := coalesce(head, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    new.hash := audit_event_digest(new.prev_hash, new);
    return new;
end;
$$;

-- Rows written before this migration start the chain, in order.
do $$
declare
    r audit_event;
    head bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
begin
    alter table audit_event disable trigger audit_event_no_update;
    for r in select * from audit_event order by event_id loop
        update audit_event set prev_hash = head, hash = audit_event_digest(head, r) where event_id = r.event_id
            returning hash into head;
    end loop;
    alter table audit_event enable trigger audit_event_no_update;
end;
$$;

alter table audit_event alter column prev_hash set not null, alter column hash set not null;

create trigger audit_event_chain before insert on audit_event
    for each row execute function audit_event_chain();
