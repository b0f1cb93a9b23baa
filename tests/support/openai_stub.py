#!/usr/bin/env python3
"""A scriptable stand-in for an OpenAI-compatible Chat Completions server,
for the tests and the bench: the one thing here we cannot run for real is
a paid LLM.

    openai_stub.py [--port N] [--tls-cert PEM --tls-key PEM]

prints "stub listening on http://127.0.0.1:PORT" (https with TLS) and
serves until killed:

  POST /v1/chat/completions  the next scripted response, or, with none
                             queued, the default behaviour below
  POST /_script              queue responses (a JSON list; see `serve`)
  GET  /_requests            what every completion request carried
  GET  /_disconnects         completion requests whose client went away
                             before the response ended, with when
  POST /_reset               forget scripts, requests and disconnects

The default behaviour answers from the last message, so that many runs can
go on at once without scripts: a tool result is answered "tool said:
CONTENT"; "call TOOL ARGS" asks for that tool with ARGS as its arguments;
"tokens N RATE" streams N tokens at RATE tokens a second (the bench);
anything else is echoed back a word at a time, with usage.
"""
import argparse
import asyncio
import json
import signal
import ssl
import sys
import time

scripts = []
requests = []
disconnects = []


def chunk(delta=None, finish=None, usage=None, choices=True):
    body = {"id": "chatcmpl-stub", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": "stub"}
    body["choices"] = [{"index": 0, "delta": delta or {},
                        "finish_reason": finish}] if choices else []
    if usage is not None:
        body["usage"] = usage
    return "data: " + json.dumps(body) + "\n\n"


def default_response(request):
    messages = request.get("messages") or [{}]
    last = messages[-1]
    content = last.get("content") or ""
    usage = {"prompt_tokens": sum(len(str(m.get("content") or "")) for m in messages),
             "completion_tokens": 0, "total_tokens": 0}
    body = [chunk({"role": "assistant", "content": ""})]
    if last.get("role") == "tool":
        words = ("tool said: " + content).split(" ")
    elif content.startswith("call "):
        _, tool, args = (content.split(" ", 2) + ["{}"])[:3]
        body.append(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                            "function": {"name": tool, "arguments": args}}]}))
        body.append(chunk(finish="tool_calls"))
        body.append(chunk(usage=usage, choices=False))
        body.append("data: [DONE]\n\n")
        return {"status": 200, "body": body}
    elif content.startswith("tokens "):
        _, n, rate = content.split(" ")
        delay = 1000.0 / float(rate)
        for i in range(int(n)):
            body.append({"sleep": delay})
            body.append({"token": i})
        body.append(chunk(finish="stop"))
        body.append("data: [DONE]\n\n")
        return {"status": 200, "body": body}
    else:
        words = content.split(" ")
    for i, w in enumerate(words):
        body.append(chunk({"content": (" " if i else "") + w}))
    usage["completion_tokens"] = len(words)
    usage["total_tokens"] = usage["prompt_tokens"] + len(words)
    body.append(chunk(finish="stop"))
    body.append(chunk(usage=usage, choices=False))
    body.append("data: [DONE]\n\n")
    return {"status": 200, "body": body}


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


async def send_whole(writer, status, payload, content_type="application/json"):
    data = payload.encode() if isinstance(payload, str) else payload
    writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    await writer.drain()


async def client_gone(reader, seconds):
    """Waits `seconds`; True as soon as the client closes meanwhile."""
    try:
        data = await asyncio.wait_for(reader.read(1), timeout=seconds)
        return data == b""
    except asyncio.TimeoutError:
        return False


async def serve(script, index, started, reader, writer):
    """One completion response. A script is
    {"status": 200, "headers": {...}, "body": [ITEM...], "close": false}
    where an ITEM is a string (written as one chunk), {"sleep": ms},
    {"cut": true} (drop the connection mid-body), {"hang": true} (send
    nothing more until the client goes away) or {"token": i} (a text
    delta "tI ")."""
    status = script.get("status", 200)
    extra = "".join(f"{k}: {v}\r\n" for k, v in script.get("headers", {}).items())
    ctype = "text/event-stream" if status == 200 else "application/json"
    writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n{extra}"
                 "Transfer-Encoding: chunked\r\n\r\n".encode())
    for item in script.get("body", []):
        if isinstance(item, dict) and "sleep" in item:
            await writer.drain()
            if await client_gone(reader, item["sleep"] / 1000.0):
                raise ConnectionResetError
            continue
        if isinstance(item, dict) and item.get("cut"):
            await writer.drain()
            writer.transport.abort()
            return False
        if isinstance(item, dict) and item.get("hang"):
            await writer.drain()
            while not await client_gone(reader, 3600):
                pass
            raise ConnectionResetError
        if isinstance(item, dict) and "token" in item:
            item = chunk({"content": f"t{item['token']} "})
        data = item.encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return not script.get("close", False)


async def handle(reader, writer):
    try:
        while True:
            try:
                method, target, headers, body = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if target == "/_script" and method == "POST":
                scripts.extend(json.loads(body))
                await send_whole(writer, 200, "{}")
            elif target == "/_requests":
                await send_whole(writer, 200, json.dumps(requests))
            elif target == "/_disconnects":
                await send_whole(writer, 200, json.dumps(disconnects))
            elif target == "/_reset" and method == "POST":
                scripts.clear()
                requests.clear()
                disconnects.clear()
                await send_whole(writer, 200, "{}")
            elif target.endswith("/chat/completions") and method == "POST":
                started = time.monotonic()
                try:
                    parsed = json.loads(body)
                except ValueError:
                    await send_whole(writer, 400, '{"error":{"message":"bad json"}}')
                    continue
                index = len(requests)
                requests.append({"path": target, "headers": headers, "body": parsed})
                script = scripts.pop(0) if scripts else default_response(parsed)
                try:
                    keep = await serve(script, index, started, reader, writer)
                except ConnectionError:
                    disconnects.append({"request": index,
                                        "after_ms": (time.monotonic() - started) * 1000,
                                        "at": time.time()})
                    return
                if not keep:
                    return
            else:
                await send_whole(writer, 404, '{"error":{"message":"not found"}}')
    finally:
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    args = p.parse_args()
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    server = await asyncio.start_server(handle, "127.0.0.1", args.port, ssl=context,
                                        backlog=4096)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if context else "http"
    print(f"stub listening on {scheme}://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    # Stopped with SIGTERM by the tests: that is a normal end.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
