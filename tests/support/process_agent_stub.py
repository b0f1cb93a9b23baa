#!/usr/bin/env python3
"""A process agent for tests that misbehaves on request. The user's message
picks what it does:

  pid                 answer with its pid (to find it), then complete
  env                 answer with the sorted names of its environment
  crash               write a text line, then exit 3 mid-run
  garbage             write a line that is not JSON
  unknown             write a line of an unknown type
  long N              write a text line of N bytes, then complete
  stderr N            write N lines to stderr, then complete
  stubborn            ignore SIGTERM and never answer (cancel -> TERM -> KILL)
  grandchild          start a child that sleeps (MARKER in its command line) and never answer
  tool NAME [JSON]    ask agentwire for tool NAME (with JSON as its input, or
                      {"expression": "2+2"}) and answer with its result
  own                 report a tool it ran itself, then complete
  public              end with an error whose message is public
  private             end with an error whose message is not public
  hang                never answer
  anything else       echo it and complete

Every process carries MARKER (its first argument) in its command line, so a
test can count what is left of it.
"""
import json
import os
import signal
import subprocess
import sys
import time

MARKER = sys.argv[1] if len(sys.argv) > 1 else "no-marker"


def send(**line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def read():
    line = sys.stdin.readline()
    return json.loads(line) if line else None


def serve(run):
    words = run["content"].split(" ", 1)
    what = words[0] if words else ""
    arg = words[1].strip() if len(words) > 1 else ""
    if what == "pid":
        send(type="text", delta=str(os.getpid()))
    elif what == "env":
        send(type="text", delta=",".join(sorted(os.environ)))
    elif what == "crash":
        send(type="text", delta="about to crash")
        sys.exit(3)
    elif what == "garbage":
        sys.stdout.write("this is not json\n")
        sys.stdout.flush()
        return wait_for_end()
    elif what == "unknown":
        send(type="telepathy", text="?")
        return wait_for_end()
    elif what == "long":
        send(type="text", delta="x" * int(arg))
    elif what == "stderr":
        for i in range(int(arg)):
            sys.stderr.write(f"stderr line {i} of run {run['run_id']}\n")
        sys.stderr.flush()
        send(type="text", delta="logged")
    elif what == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        send(type="text", delta=str(os.getpid()))
        return wait_for_end(ignore_cancel=True)
    elif what == "grandchild":
        # (sh's $0 carries the marker; the trailing ':' keeps sh from exec'ing sleep)
        child = subprocess.Popen(["sh", "-c", "sleep 300; :", MARKER])
        send(type="text", delta=f"{os.getpid()} {child.pid}")
        return wait_for_end(ignore_cancel=True)
    elif what == "tool":
        name, _, given = arg.partition(" ")
        send(type="tool_call", call_id="t-1", tool=name,
             input=json.loads(given) if given else {"expression": "2+2"})
        msg = read()
        while msg is not None and msg["type"] != "tool_result":
            msg = read()
        if msg is None:
            return False
        send(type="text", delta=json.dumps({"ok": msg["ok"], "output": msg["output"]}))
    elif what == "own":
        send(type="tool_started", call_id="own-1", tool="lookup", input={"q": "x"})
        send(type="tool_finished", call_id="own-1", ok=True, output={"found": 1})
        send(type="text", delta="looked it up")
    elif what == "public":
        send(type="error", code="upstream_unavailable", message="The weather service is down.",
             public=True)
        return True
    elif what == "private":
        send(type="error", code="nonsense", message="/secret/path failed")
        return True
    elif what == "hang":
        return wait_for_end()
    else:
        send(type="text", delta=run["content"])
    send(type="completed", result={"history": len(run["history"])})
    return True


def wait_for_end(ignore_cancel=False):
    while True:
        msg = read()
        if msg is None:
            if ignore_cancel:
                time.sleep(300)
            return False
        if msg["type"] == "cancel" and not ignore_cancel:
            return False


def main():
    while True:
        msg = read()
        if msg is None:
            return
        if msg["type"] == "run" and not serve(msg):
            return


if __name__ == "__main__":
    main()
