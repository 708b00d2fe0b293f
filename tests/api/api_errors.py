#!/usr/bin/env python3
"""Every dispatchd endpoint answers bad requests with a 4xx and a message, and survives.

Starts a real dispatchd on loopback with a fresh state directory, then sends
malformed JSON, wrong types, oversized bodies, unknown ids, wrong methods and
missing or wrong credentials to each endpoint of docs/api.md.
"""
import http.client
import io
import json
import tarfile
import os
import hashlib
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

DISPATCHD = os.environ["DISPATCHD"]
failures = []


def start(state):
    proc = subprocess.Popen([DISPATCHD, "--state-dir", state, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(os.path.dirname(state), "dispatchd.log"), "w"))
    for _ in range(100):
        if os.path.exists(os.path.join(state, "dispatchd.url")):
            break
        time.sleep(0.05)
    url = open(os.path.join(state, "dispatchd.url")).read().strip()
    host, port = url.split("//")[1].rsplit(":", 1)
    return proc, host, int(port)


def request(conn_args, method, path, body=None, token=None, headers=None):
    conn = http.client.HTTPConnection(*conn_args, timeout=30)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def check(name, conn_args, method, path, want, body=None, token=None, headers=None):
    status, data = request(conn_args, method, path, body, token, headers)
    ok = status == want
    msg = ""
    if 400 <= status < 500:
        try:
            msg = json.loads(data)["error"]
            ok = ok and isinstance(msg, str) and len(msg) > 5
        except (ValueError, KeyError, TypeError):
            ok = False
            msg = "(no JSON error message: %r)" % data[:80]
    print("%s %-58s %s %s -> %d %s" % ("PASS" if ok else "FAIL", name, method, path, status, msg[:90]))
    if not ok:
        failures.append(name)
    return data


def interleaved_upload(conn_args, token):
    """A PUT whose body arrives in two parts while another request is served in
    between: the upload must still be checked against its own URL's digest."""
    body = os.urandom(64 * 1024)
    digest = hashlib.sha256(body).hexdigest()
    a = socket.create_connection(conn_args, timeout=30)
    a.sendall(("PUT /v1/blobs/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (digest, token, len(body))).encode())
    # "100 Continue" means dispatchd has routed this request already.
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = a.recv(4096)
        if not chunk:
            break
        got += chunk
    if not got.startswith(b"HTTP/1.1 100"):
        a.close()
        return 0, "no 100 Continue: %r" % got[:80]
    a.sendall(body[:1000])
    # Another request with a digest in its path, served while the upload waits.
    request(conn_args, "GET", "/v1/blobs/" + "b" * 64, token=token)
    a.sendall(body[1000:])
    reply = b""
    while True:
        chunk = a.recv(65536)
        if not chunk:
            break
        reply += chunk
        head, sep, rest = reply.partition(b"\r\n\r\n")
        if sep:
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if length and len(rest) >= length[0]:
                break
    a.close()
    status = int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1 ") else 0
    return status, reply.partition(b"\r\n\r\n")[2].decode(errors="replace")


def main():
    work = tempfile.mkdtemp(prefix="api-errors.", dir=os.environ.get("TMPDIR"))
    state = os.path.join(work, "state")
    proc, host, port = start(state)
    c = (host, port)
    op = open(os.path.join(state, "operator.token")).read().strip()
    join = open(os.path.join(state, "join.token")).read().strip()
    try:
        # Credentials: none, wrong, and the wrong kind for the endpoint.
        for method, path in [("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/j-1"),
                             ("POST", "/v1/jobs/j-1/cancel"), ("GET", "/v1/instances/i-1"),
                             ("GET", "/v1/instances/i-1/logs"), ("GET", "/v1/instances/i-1/result"),
                             ("GET", "/v1/nodes"), ("POST", "/v1/agent/join"), ("GET", "/v1/agent/messages"),
                             ("POST", "/v1/agent/heartbeat"), ("POST", "/v1/agent/events"),
                             ("GET", "/v1/blobs/" + "0" * 64), ("PUT", "/v1/blobs/" + "0" * 64)]:
            check("no credentials", c, method, path, 401)
            check("wrong token", c, method, path, 401, token="x" * 64)
            check("malformed authorization header", c, method, path, 401, headers={"Authorization": "Basic abc"})
        check("join token cannot list jobs", c, "GET", "/v1/jobs", 401, token=join)
        check("operator cannot poll as a node", c, "GET", "/v1/agent/messages", 401, token=op)
        check("operator cannot join", c, "POST", "/v1/agent/join", 401, token=op, body={})

        # Plain HTTP off loopback is refused at start, by dispatchd and by the agent, unless told.
        for name, argv in [
                ("dispatchd: plain HTTP off loopback refused",
                 [os.environ["DISPATCHD"], "--state-dir", os.path.join(work, "plain"), "--listen", "198.18.255.254:7443"]),
                ("agent: a plain HTTP dispatcher off loopback refused",
                 [os.environ["DISPATCH_AGENT"], "--dispatcher", "http://198.18.255.254:7443", "--join-token", "t",
                  "--work-dir", os.path.join(work, "plain-agent")])]:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            ok = run.returncode == 2 and "--insecure-http" in run.stderr
            print("%s %-58s -> exit %d %s" % ("PASS" if ok else "FAIL", name, run.returncode,
                                               run.stderr.strip().splitlines()[-1:] or ""))
            if not ok:
                failures.append(name)

        # One dispatchd per state directory: a second one on the same directory stops at once, saying why.
        try:
            run = subprocess.run([os.environ["DISPATCHD"], "--state-dir", state, "--listen", "127.0.0.1:0"],
                                 capture_output=True, text=True, timeout=20)
            ok = run.returncode != 0 and "another dispatchd uses" in run.stderr
            said = "exit %d %s" % (run.returncode, run.stderr.strip().splitlines()[-1:] or "")
        except subprocess.TimeoutExpired:
            ok, said = False, "still running after 20 s"
        print("%s %-58s -> %s" % ("PASS" if ok else "FAIL", "dispatchd: a second one on the same state", said))
        if not ok:
            failures.append("dispatchd: a second one on the same state")

        # Routing.
        check("unknown path", c, "GET", "/v1/nope", 404, token=op)
        check("unknown path outside /v1", c, "GET", "/", 404, token=op)
        check("wrong method", c, "DELETE", "/v1/jobs", 405, token=op)

        # Unknown ids.
        for path in ["/v1/jobs/j-999", "/v1/jobs/x", "/v1/jobs/j-", "/v1/jobs/j-1x", "/v1/instances/i-42",
                     "/v1/instances/j-1", "/v1/instances/i-42/logs", "/v1/instances/i-42/result"]:
            check("unknown id", c, "GET", path, 404, token=op)
        check("cancel unknown job", c, "POST", "/v1/jobs/j-77/cancel", 404, token=op)
        # The message quotes the id: bytes that are not UTF-8, or a character cut at the quote's end,
        # must still give a JSON answer (a 500 "cannot build the reply" before).
        check("unknown id, not UTF-8", c, "GET", "/v1/jobs/%FF%FE", 404, token=op)
        check("unknown id, cut mid-character", c, "GET", "/v1/instances/" + "a" * 63 + "%C3%A9", 404, token=op)
        for bad in ["-1", "abc", "1x", "", "99999999999999999999999", "+1", "%20-1", "%201"]:
            check("logs: bad offset %r" % bad, c, "GET", "/v1/instances/i-1/logs?offset=" + bad, 400, token=op)
        check("unknown blob", c, "GET", "/v1/blobs/" + "a" * 64, 404, token=op)
        check("blob name not a digest", c, "GET", "/v1/blobs/..%2F..%2Fetc%2Fpasswd", 404, token=op)

        # Job bundles.
        check("job: empty body", c, "POST", "/v1/jobs", 400, body=b"", token=op)
        check("job: garbage body", c, "POST", "/v1/jobs", 400, body=os.urandom(4096), token=op)
        check("job: JSON instead of a bundle", c, "POST", "/v1/jobs", 400, body={"manifest": 1}, token=op)

        # Joining.
        check("join: malformed JSON", c, "POST", "/v1/agent/join", 400, body=b"{\"name\": ", token=join)
        check("join: not an object", c, "POST", "/v1/agent/join", 400, body=[1, 2], token=join)
        check("join: missing fields", c, "POST", "/v1/agent/join", 400, body={}, token=join)
        good = {"name": "n", "isa": "x86_64", "levels": ["baseline"], "cores": 1, "memory": 1}
        for key, bad in [("name", 5), ("isa", "x86 64"), ("levels", "baseline"), ("levels", []), ("levels", [1]),
                         ("cores", "2"), ("cores", 0), ("memory", -1), ("running", {})]:
            body = dict(good)
            body[key] = bad
            check("join: %s=%r" % (key, bad), c, "POST", "/v1/agent/join", 400, body=body, token=join)
        check("join: duplicate keys", c, "POST", "/v1/agent/join", 400,
              body=b'{"name": "a", "name": "b", "isa": "x86_64", "levels": ["baseline"], "cores": 1, "memory": 1}',
              token=join)
        check("join: oversized body", c, "POST", "/v1/agent/join", 413, body=b"[" + b"1," * (600 * 1024) + b"1]",
              token=join)
        data = check("join: a good one", c, "POST", "/v1/agent/join", 200, body=good, token=join)
        node = json.loads(data)["token"]

        # Node endpoints.
        check("messages: negative after", c, "GET", "/v1/agent/messages?after=-1", 400, token=node)
        check("messages: nothing waiting, no wait", c, "GET", "/v1/agent/messages?after=0", 200, token=node)
        check("heartbeat: wrong types", c, "POST", "/v1/agent/heartbeat", 400, body={"running": 3}, token=node)
        check("heartbeat: malformed JSON", c, "POST", "/v1/agent/heartbeat", 400, body=b"nope", token=node)
        check("events: missing fields", c, "POST", "/v1/agent/events", 400, body={}, token=node)
        check("events: bad instance id", c, "POST", "/v1/agent/events", 400,
              body={"instance": "x", "generation": 1, "events": []}, token=node)
        check("events: unknown instance", c, "POST", "/v1/agent/events", 404,
              body={"instance": "i-9", "generation": 1, "events": []}, token=node)
        check("events: events not an array", c, "POST", "/v1/agent/events", 400,
              body={"instance": "i-9", "generation": 1, "events": {}}, token=node)
        check("events: too many", c, "POST", "/v1/agent/events", 413,
              body={"instance": "i-9", "generation": 1, "events": [{}] * 1001}, token=node)
        check("events: batches not an array", c, "POST", "/v1/agent/events", 400, body={"batches": {}}, token=node)
        check("events: too many batches", c, "POST", "/v1/agent/events", 413,
              body={"batches": [{}] * 257}, token=node)
        check("events: too many events in batches", c, "POST", "/v1/agent/events", 413,
              body={"batches": [{"instance": "i-9", "generation": 1, "events": [{}] * 600}] * 2}, token=node)
        got = check("events: batches answered one by one", c, "POST", "/v1/agent/events", 200, token=node,
                    body={"batches": [{"instance": "i-9", "generation": 1, "events": []}, 7,
                                      {"instance": "x", "generation": 1, "events": []}]})
        results = [(r["status"], r.get("error", "")) for r in json.loads(got)["results"]]
        ok = [st for st, _ in results] == [404, 400, 400] and all(len(e) > 5 for _, e in results)
        print("%s %-58s -> %s" % ("PASS" if ok else "FAIL", "events: each batch's status and reason", results))
        if not ok:
            failures.append("events: each batch's status and reason")

        # Blobs.
        check("put blob: digest mismatch", c, "PUT", "/v1/blobs/" + "0" * 64, 400, body=b"hello", token=node)
        check("put blob: not a digest", c, "PUT", "/v1/blobs/abc", 400, body=b"hello", token=node)
        digest = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        check("put blob: good", c, "PUT", "/v1/blobs/" + digest, 201, body=b"hello", token=node)
        check("put blob: again", c, "PUT", "/v1/blobs/" + digest, 200, body=b"hello", token=node)
        got = check("get blob", c, "GET", "/v1/blobs/" + digest, 200, token=op)
        if got != b"hello":
            failures.append("get blob content")
        status, text = interleaved_upload(c, node)
        ok = status == 201
        print("%s %-58s -> %d %s" % ("PASS" if ok else "FAIL", "put blob: another request served mid-upload",
                                      status, text.strip()[:120]))
        if not ok:
            failures.append("put blob: another request served mid-upload")

        # A finished instance whose result blob is not a state bundle: an error, not an empty result.
        db = sqlite3.connect(os.path.join(state, "dispatch.db"), timeout=10)
        db.execute("INSERT INTO jobs(id, name, dir, state, created) VALUES(77, 'j', '/', 'done', 0)")
        db.execute("INSERT INTO instances(id, job, object, idx, state, created, result_digest) "
                   "VALUES(77, 77, 'o', 0, 'done', 0, ?)", (digest,))
        db.commit()
        db.close()
        check("result: unreadable bundle", c, "GET", "/v1/instances/i-77/result", 500, token=op)

        # An exit 0 whose state the agent could not upload is a failure that says why, not a result of nothing.
        nid = json.loads(data)["node"]
        db = sqlite3.connect(os.path.join(state, "dispatch.db"), timeout=10)
        db.execute("INSERT INTO instances(id, job, object, idx, state, created, node, generation) "
                   "VALUES(78, 77, 'o', 1, 'running', 0, ?, 1)", (int(nid.split("-")[1]),))
        db.commit()
        db.close()
        check("events: exit 0 without its state", c, "POST", "/v1/agent/events", 200, token=node,
              body={"instance": "i-78", "generation": 1,
                    "events": [{"kind": "exit", "code": 0, "state": None,
                                "error": "cannot upload the state: PUT /v1/blobs/x: 400 mismatch"}]})
        inst = json.loads(check("instance: the lost result", c, "GET", "/v1/instances/i-78", 200, token=op))
        ok = inst["state"] == "failed" and "cannot upload the state" in (inst["error"] or "")
        print("%s %-58s -> %s %s" % ("PASS" if ok else "FAIL", "exit 0 without its state: failed, saying why",
                                      inst["state"], inst["error"]))
        if not ok:
            failures.append("exit 0 without its state")

        # A small state bundle may ride inside its checkpoint or exit event, base64.
        db = sqlite3.connect(os.path.join(state, "dispatch.db"), timeout=10)
        db.execute("INSERT INTO instances(id, job, object, idx, state, created, node, generation) "
                   "VALUES(79, 77, 'o', 2, 'running', 0, ?, 1)", (int(nid.split("-")[1]),))
        db.commit()
        db.close()
        bundle = os.urandom(3000)
        bdigest = hashlib.sha256(bundle).hexdigest()
        b64 = __import__("base64").b64encode(bundle).decode()
        def ckpt(name, want, b, d):
            check("events: " + name, c, "POST", "/v1/agent/events", want, token=node,
                  body={"instance": "i-79", "generation": 1,
                        "events": [{"kind": "checkpoint", "state": d, "bundle": b}]})
        ckpt("inline bundle not base64", 400, b64[:-4] + "!!!!", bdigest)
        ckpt("inline bundle with a line break", 400, b64[:40] + "\n" + b64[40:], bdigest)
        ckpt("inline bundle of another digest", 400, b64, "1" * 64)
        ckpt("inline bundle not a string", 400, 17, bdigest)
        ckpt("inline bundle larger than 64 KiB", 400,
             __import__("base64").b64encode(os.urandom(65 * 1024)).decode(), bdigest)
        check("blob: nothing stored by the refused ones", c, "GET", "/v1/blobs/" + bdigest, 404, token=op)
        ckpt("inline bundle, good", 200, b64, bdigest)
        got = check("blob: the inline bundle is stored", c, "GET", "/v1/blobs/" + bdigest, 200, token=op)
        inst = json.loads(check("instance: its checkpoint", c, "GET", "/v1/instances/i-79", 200, token=op))
        if got != bundle or inst["state_digest"] != bdigest:
            failures.append("inline bundle stored and named")

        # A result's state.json is read in memory and bounded: 5 MiB that pack into a few KiB are
        # named, not loaded (dispatchd once unpacked the whole bundle, gigabytes for a crafted one).
        db = sqlite3.connect(os.path.join(state, "dispatch.db"), timeout=10)
        db.execute("INSERT INTO instances(id, job, object, idx, state, created, node, generation) "
                   "VALUES(80, 77, 'o', 3, 'running', 0, ?, 1)", (int(nid.split("-")[1]),))
        db.commit()
        db.close()
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            big = b'{"values": {"a": [' + b"0," * (5 << 19) + b'0]}}'
            info = tarfile.TarInfo("state.json")
            info.size = len(big)
            tar.addfile(info, io.BytesIO(big))
        packed = raw.getvalue()
        check("events: exit 0 with a state.json of 5 MiB", c, "POST", "/v1/agent/events", 200, token=node,
              body={"instance": "i-80", "generation": 1,
                    "events": [{"kind": "exit", "code": 0, "state": hashlib.sha256(packed).hexdigest(),
                                "bundle": __import__("base64").b64encode(packed).decode()}]})
        res = json.loads(check("result: a large state.json is named", c, "GET", "/v1/instances/i-80/result", 200,
                               token=op))
        ok = res["state"] is None and "larger than 4 MiB" in res.get("note", "") and res["digest"]
        print("%s %-58s -> %s" % ("PASS" if ok else "FAIL", "result: state null, a note, the digest",
                                   res.get("note")))
        if not ok:
            failures.append("result: a large state.json is named")

        # An instance's history is shown bounded: the latest 500 entries and how many are left out.
        db = sqlite3.connect(os.path.join(state, "dispatch.db"), timeout=10)
        db.executemany("INSERT INTO history(instance, time, event, detail) VALUES(80, ?, 'checkpoint', ?)",
                       [(1000.0 + k, "c%d" % k) for k in range(700)])
        db.commit()
        db.close()
        inst = json.loads(check("instance: a long history", c, "GET", "/v1/instances/i-80", 200, token=op))
        hist = inst["history"]
        ok = len(hist) == 500 and hist[-1]["detail"] == "c699" and inst.get("history_omitted", 0) >= 200
        print("%s %-58s -> %d shown, %s omitted" % ("PASS" if ok else "FAIL", "instance: the latest 500 entries",
                                                    len(hist), inst.get("history_omitted")))
        if not ok:
            failures.append("instance: the latest 500 entries")

        # A long poll's answer is bounded in bytes, not only in count: 40 start messages of 100 KB
        # (more than an agent takes in one answer) come in several answers, none lost.
        db = sqlite3.connect(os.path.join(state, "dispatch.db"), timeout=10)
        big = json.dumps({"type": "stop", "instance": "i-1", "generation": 1, "mode": "kill", "pad": "x" * 100000})
        db.executemany("INSERT INTO messages(node, body, created) VALUES(?, ?, 0)",
                       [(int(nid.split("-")[1]), big)] * 40)
        db.commit()
        db.close()
        seen, after, answers, largest = 0, 0, 0, 0
        while answers < 50:
            status, data = request(c, "GET", "/v1/agent/messages?after=%d" % after, token=node)
            answers += 1
            got = json.loads(data) if status == 200 else {}
            msgs = [m for m in got.get("messages", []) if m.get("mode") == "kill"]
            if status != 200 or not got.get("messages"):
                break
            largest = max(largest, len(data))
            seen += len(msgs)
            after = got["seq"]
        ok = seen == 40 and answers > 2 and largest < 3 * 1024 * 1024
        print("%s %-58s -> %d messages in %d answers, largest %d bytes" % (
            "PASS" if ok else "FAIL", "messages: long poll answers bounded in bytes", seen, answers, largest))
        if not ok:
            failures.append("messages bounded in bytes")

        # Still alive, still answering.
        check("still serving", c, "GET", "/v1/jobs", 200, token=op)
        if proc.poll() is not None:
            failures.append("dispatchd exited with %s" % proc.returncode)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("FAILED: %d checks: %s" % (len(failures), ", ".join(sorted(set(failures)))))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
