-- wrk: keep-alive POST of a JSON-RPC ping. With MCP_SESSION set, on that MCP session.
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"ping"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
local sid = os.getenv("MCP_SESSION")
if sid and sid ~= "" then
  wrk.headers["Mcp-Session-Id"] = sid
  wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
end
