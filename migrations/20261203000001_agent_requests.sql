-- Requests an AI agent made for a person through the MCP server: the name of the personal
-- token it used. NULL for requests people made themselves (pages, API, command line).
alter table access_request add column agent_token_name text;
