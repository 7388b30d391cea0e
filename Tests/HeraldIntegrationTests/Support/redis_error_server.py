#!/usr/bin/env python3
"""A stand-in for Redis that answers every command with an error reply, as a proxy with no
upstream does (`-ERR upstream unavailable`). Reads RESP arrays and inline commands; prints
"ready" once it listens on 127.0.0.1:PORT. Usage: redis_error_server.py PORT [REPLY]."""
import asyncio
import sys


async def serve(port, reply):
    async def handle(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line.startswith(b"*"):
                    for _ in range(int(line[1:])):
                        header = await reader.readline()
                        await reader.readexactly(int(header[1:]) + 2)
                writer.write(b"-" + reply + b"\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    reply = (sys.argv[2] if len(sys.argv) > 2 else "ERR upstream unavailable").encode()
    asyncio.run(serve(int(sys.argv[1]), reply))
