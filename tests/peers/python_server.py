"""An MCP server built with the official Python SDK (PyPI `mcp`), for the engine to load.

Usage: python_server.py json|sse
Binds 127.0.0.1 on a free port, prints `listening PORT` on stdout, serves Streamable HTTP at /mcp
until killed. `json` answers requests with application/json, `sse` with text/event-stream.
"""

import socket
import sys

import uvicorn
import logging

from mcp.server.mcpserver import MCPServer


def main(mode: str) -> None:
    logging.getLogger("mcp").setLevel(logging.WARNING)
    server = MCPServer("python-peer")

    @server.tool()
    def echo(text: str) -> str:
        return text

    app = server.streamable_http_app(json_response=(mode == "json"), host="127.0.0.1")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(f"listening {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", backlog=1024)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("json", "sse"):
        sys.exit("usage: python_server.py json|sse")
    main(sys.argv[1])
