"""Drives replica with the official MCP Python SDK (PyPI `mcp`) over Streamable HTTP.

Usage: python_client.py URL MODE   (MODE: auto | legacy, the SDK's connect modes)
Prints one JSON object describing what the SDK saw; the Rust test asserts on it.
Exits non-zero (with a traceback on stderr) if the SDK fails anywhere.
"""

import asyncio
import json
import sys

from mcp import Client
from mcp.shared.exceptions import MCPError


async def main(url: str, mode: str) -> dict:
    seen: dict = {}
    async with Client(url, mode=mode, read_timeout_seconds=20) as client:
        seen["server_name"] = client.server_info.name if client.server_info else None
        seen["protocol_version"] = client.protocol_version
        tools = await client.list_tools()
        seen["tools"] = [t.name for t in tools.tools]
        echo = await client.call_tool("echo", {"text": "hello from python"})
        seen["echo"] = echo.content[0].text
        seen["echo_is_error"] = echo.is_error
        added = await client.call_tool("add", {"a": 2, "b": 3.5})
        seen["add"] = added.content[0].text
        try:
            await client.call_tool("no-such-tool", {})
            seen["unknown_tool_code"] = None
        except MCPError as e:
            seen["unknown_tool_code"] = e.code
        resources = await client.list_resources()
        seen["resources"] = [str(r.uri) for r in resources.resources]
        read = await client.read_resource("replica://identity")
        seen["resource_text"] = read.contents[0].text
        await client.send_ping()
        seen["ping"] = True
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
