#!/usr/bin/env python3
"""A tiny client of the dispatchd API for tests: api.py METHOD PATH [JSON BODY].

Uses DISPATCH_URL, DISPATCH_TOKEN_FILE and DISPATCH_CA like the CLI; prints
the JSON answer; exits 1 on an HTTP error (printing the error body).
"""
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

method, path = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
token = open(os.environ["DISPATCH_TOKEN_FILE"]).read().strip()
ctx = ssl.create_default_context(cafile=os.environ.get("DISPATCH_CA")) if os.environ.get("DISPATCH_CA") else None
req = urllib.request.Request(os.environ["DISPATCH_URL"] + path, data=body, method=method,
                             headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
        data = r.read()
except urllib.error.HTTPError as e:
    sys.stderr.write("%s %s: %d %s\n" % (method, path, e.code, e.read().decode(errors="replace")))
    sys.exit(1)
if path.startswith("/v1/blobs/"):
    sys.stdout.buffer.write(data)
else:
    print(data.decode())
