-- wrk script: keep-alive POST /mcp ping on one MCP session.
-- The session id comes from the environment (MCP_SESSION), minted by the caller's initialize.
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":7,"method":"ping"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
wrk.headers["Mcp-Session-Id"] = os.getenv("MCP_SESSION")

local bad = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true) then
    bad = bad + 1
  end
end

done = function(summary, latency, requests)
  io.write(string.format("non-result replies: %d\n", bad))
end
