#!/usr/bin/env python3
"""An agentwire process agent in plain Python (standard library only).

It speaks the JSON-lines protocol of docs/AGENTS.md on stdin/stdout: for
arithmetic it asks agentwire's `calculator` tool, otherwise it answers from
the thread's history. It serves run after run, so it also works in a pool.
"""
import json
import re
import sys


def send(**line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def read():
    line = sys.stdin.readline()
    return json.loads(line) if line else None


def stream(text):
    for i, word in enumerate(text.split(" ")):
        send(type="text", delta=word if i == 0 else " " + word)


def serve(run):
    question = run["content"]
    send(type="thinking", text="Reading the question")
    match = re.search(r"[-+*/().\d\s]*\d[-+*/().\d\s]*", question)
    if match and re.search(r"\d\s*[-+*/]\s*[\d(]", match.group(0)):
        expression = match.group(0).strip()
        send(type="tool_call", call_id="calc-1", tool="calculator",
             input={"expression": expression})
        while True:
            msg = read()
            if msg is None or msg["type"] == "cancel":
                return False
            if msg["type"] == "tool_result" and msg["call_id"] == "calc-1":
                break
        if not msg["ok"]:
            send(type="error", code="agent_failed", message="The calculator failed.",
                 public=True)
            return True
        answer = f"{expression} = {msg['output']}"
    else:
        earlier = len(run["history"])
        answer = (f"You said: {question}. This thread had {earlier} earlier "
                  f"message{'s' if earlier != 1 else ''}.")
    stream(answer)
    send(type="completed", result={"agent": "python"})
    return True


def main():
    while True:
        msg = read()
        if msg is None:
            return
        if msg["type"] == "run" and not serve(msg):
            return


if __name__ == "__main__":
    main()
