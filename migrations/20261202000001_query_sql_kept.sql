-- A query's SQL is kept up to 16 KB (a grant holder can send Athena 256 KB per query, as
-- often as they like); its whole length and SHA-256 are kept beside it. Null for rows
-- stored before.
alter table athena_query
    add column sql_bytes integer check (sql_bytes >= 0),
    add column sql_sha256 text check (sql_sha256 ~ '^[0-9a-f]{64}$');
