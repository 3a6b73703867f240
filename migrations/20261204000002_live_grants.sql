-- The live-grants view (docs/decisions/0024-live-grants-in-memory.md): every replica keeps the
-- active grants' credentials facts in memory and answers the credentials URL from there. A
-- change to what the credentials URL relies on is announced, with the request id, when its
-- transaction commits, so every replica re-reads that grant at once.
create function access_request_credentials_changed() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        if new.status = 'active' then
            perform pg_notify('lakegate_grants', new.request_id::text);
        end if;
    elsif (old.status = 'active' or new.status = 'active')
        and (old.status, old.expires_at, old.credentials_token_hash,
             old.credentials_token_issued_at, old.role_arn)
            is distinct from
            (new.status, new.expires_at, new.credentials_token_hash,
             new.credentials_token_issued_at, new.role_arn) then
        perform pg_notify('lakegate_grants', new.request_id::text);
    end if;
    return null;
end;
$$;

create trigger access_request_announces_credentials_changes
    after insert or update on access_request
    for each row execute function access_request_credentials_changed();
