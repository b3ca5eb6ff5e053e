"""adapter_http.py — the daemon's HTTP/JSON API, driven by curl, across a
real gateway.

The court POSTs a sentence order; probation lists, fetches and consumes it;
the court follows its receipts until DELIVERED by both recipients;
probation answers with an assessment that correlates to it. Then the
refusals: bad JSON (400 naming the JSON path), wrong media type (415), a
body over the limit by Content-Length and chunked (413), unknown resources
(404), wrong methods (405 with Allow), requests a web page could make
(Origin, foreign Host: 403), and a daemon asked to listen on a non-loopback
address, which must refuse to start.
"""

import os
import subprocess

from adapter_harness import run, wait_for

JSON = ["Content-Type: application/json"]


def test(env):
    order = env.data("sentence_order.json")
    env.start_gateway()
    court = env.start_daemon("KG-COURT-BISHKEK", dropbox=False)
    probation = env.start_daemon("KG-PROBATION", dropbox=False)
    prison = env.start_daemon("KG-PRISON", dropbox=False)

    for daemon in (court, probation, prison):
        def healthy():
            status, health = env.curl("GET", daemon.http + "/v1/health")
            return status == 200 and health["status"] == "ok" and health
        health = wait_for(healthy, 20, "%s to report a CONNECTED link" % daemon.agency)
        assert health["agency"] == daemon.agency and health["link"]["state"] == "CONNECTED"
        assert health["dropbox"] is False

    # ---- send ----
    status, answer = env.curl("POST", court.http + "/v1/messages", headers=JSON, body={
        "type": "justx.v1.SentenceOrder", "caseId": "HTTP-1", "expiresInSeconds": "3600",
        "payload": order})
    assert status == 202, (status, answer)
    message_id = answer["messageId"]
    assert answer["duplicate"] is False

    def delivered():
        status, state = env.curl("GET", court.http + "/v1/receipts/" + message_id)
        return status == 200 and state["deliveredCount"] == 2 and state
    state = wait_for(delivered, 20, "DELIVERED by probation and prison, seen over HTTP")
    assert state["status"] == "DELIVERED" and state["inOutbox"] is False, state
    assert state["caseId"] == "HTTP-1" and state["type"] == "justx.v1.SentenceOrder"
    statuses = sorted((r["status"], r.get("recipient", "")) for r in state["receipts"])
    assert statuses == [("ACCEPTED", ""), ("DELIVERED", "KG-PRISON"),
                        ("DELIVERED", "KG-PROBATION")], statuses
    assert all(len(r["evidence"]) > 100 for r in state["receipts"])

    # ---- receive, fetch, consume ----
    def listed():
        status, listing = env.curl("GET", probation.http + "/v1/messages?unconsumed=true")
        return status == 200 and listing["messages"] and listing
    listing = wait_for(listed, 10, "the order listed at probation")
    assert [m["messageId"] for m in listing["messages"]] == [message_id], listing
    summary = listing["messages"][0]
    assert summary["sender"] == "KG-COURT-BISHKEK" and summary["caseId"] == "HTTP-1"
    assert summary["consumed"] is False and "payload" not in summary
    assert listing["next"] == summary["sequence"]

    path = "/v1/messages/KG-COURT-BISHKEK/" + message_id
    status, message = env.curl("GET", probation.http + path)
    assert status == 200, (status, message)
    assert message["payload"] == order and message["type"] == "justx.v1.SentenceOrder"
    assert message["sender"] == "KG-COURT-BISHKEK" and message["expiresAtMs"] > 0
    assert len(message["signerCertificateSha256"]) == 64

    status, consumed = env.curl("POST", probation.http + path + "/consume")
    assert status == 200 and consumed["alreadyConsumed"] is False, (status, consumed)
    status, consumed = env.curl("POST", probation.http + path + "/consume")
    assert status == 200 and consumed["alreadyConsumed"] is True, (status, consumed)
    status, listing = env.curl("GET", probation.http + "/v1/messages?unconsumed=true")
    assert status == 200 and listing["messages"] == [], listing
    status, listing = env.curl("GET", probation.http + "/v1/messages?unconsumed=false")
    assert [m["consumed"] for m in listing["messages"]] == [True], listing
    status, message = env.curl("GET", probation.http + path)
    assert status == 200 and message["consumed"] is True

    # ---- receipts as a feed ----
    status, feed = env.curl("GET", court.http + "/v1/receipts?since=0")
    assert status == 200 and len(feed["receipts"]) == 3, feed
    assert "evidence" not in feed["receipts"][0]
    status, rest = env.curl("GET", court.http + "/v1/receipts?since=%d" % feed["next"])
    assert status == 200 and rest["receipts"] == [] and rest["next"] == feed["next"], rest
    status, first = env.curl("GET", court.http + "/v1/receipts?since=0&limit=1&evidence=true")
    assert len(first["receipts"]) == 1 and "evidence" in first["receipts"][0], first

    # ---- an answer that correlates, through the routes ----
    status, answer = env.curl("POST", probation.http + "/v1/messages", headers=JSON, body={
        "type": "justx.v1.RiskNeedsAssessment", "caseId": "HTTP-1",
        "correlationId": message_id, "payload": env.data("risk_needs_assessment.json")})
    assert status == 202, (status, answer)

    def answered():
        status, listing = env.curl("GET", court.http + "/v1/messages?unconsumed=true")
        return listing["messages"] if status == 200 else None
    summaries = wait_for(answered, 20, "the assessment at the court")
    status, reply = env.curl("GET", court.http + "/v1/messages/KG-PROBATION/" +
                             summaries[0]["messageId"])
    assert reply["correlationId"] == message_id and reply["type"] == \
        "justx.v1.RiskNeedsAssessment", reply

    # ---- the same messageId twice: sent once ----
    fixed = {"type": "justx.v1.SentenceOrder", "messageId": "01890a5d-ac96-774b-bcce-b302099a8058",
             "caseId": "HTTP-2", "payload": order}
    status, answer = env.curl("POST", court.http + "/v1/messages", headers=JSON, body=fixed)
    assert status == 202 and answer["messageId"] == fixed["messageId"], (status, answer)
    status, answer = env.curl("POST", court.http + "/v1/messages", headers=JSON, body=fixed)
    assert status == 200 and answer["duplicate"] is True, (status, answer)

    # ---- refusals ----
    def refused(expected_status, expected_code, method, url, reason_part="", **options):
        status, error = env.curl(method, url, **options)
        assert status == expected_status, (url, status, error)
        assert isinstance(error, dict) and error["code"] == expected_code, (url, error)
        assert reason_part in error["reason"], (reason_part, error)
        return error

    messages = court.http + "/v1/messages"
    refused(400, "JSON_WRONG_TYPE", "POST", messages, "message.to[1]: ", headers=JSON,
            body={"type": "justx.v1.SentenceOrder", "to": ["KG-PROBATION", 5], "payload": order})
    bad = dict(order, termDays="many")
    refused(400, "JSON_BAD_VALUE", "POST", messages, "message.payload: sentenceOrder.termDays",
            headers=JSON, body={"type": "justx.v1.SentenceOrder", "payload": bad})
    refused(400, "JSON_SYNTAX", "POST", messages, "line 1", headers=JSON, raw=b'{"type": ')
    refused(400, "UNKNOWN_TYPE", "POST", messages, "message.type", headers=JSON,
            body={"type": "justx.v1.Ack", "payload": {}})
    refused(415, "UNSUPPORTED_MEDIA_TYPE", "POST", messages,
            headers=["Content-Type: text/plain"], body={"type": "justx.v1.SentenceOrder"})
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    refused(413, "TOO_LARGE", "POST", messages, "limit is 1048576", headers=JSON, raw=big)
    refused(413, "TOO_LARGE", "POST", messages, "limit of 1048576", raw=big,
            headers=JSON + ["Transfer-Encoding: chunked"])
    refused(404, "NOT_FOUND", "GET",
            probation.http + "/v1/messages/KG-COURT-BISHKEK/01890a5d-ac96-774b-bcce-b30209999999")
    refused(404, "NOT_FOUND", "POST", probation.http +
            "/v1/messages/KG-COURT-BISHKEK/01890a5d-ac96-774b-bcce-b30209999999/consume")
    refused(404, "NOT_FOUND", "GET", court.http + "/v1/receipts/01890a5d-ac96-774b-bcce-b30209999999")
    refused(404, "NOT_FOUND", "GET", court.http + "/v2/messages")
    refused(400, "INVALID_ARGUMENT", "GET", probation.http + "/v1/messages/court/" + message_id,
            "not an agency id")
    refused(400, "INVALID_ARGUMENT", "GET", probation.http + "/v1/messages/%FF%ED%A0%80/" +
            message_id, "not an agency id")  # bytes that are not UTF-8 in the path
    refused(400, "INVALID_ARGUMENT", "GET", court.http + "/v1/receipts?since=-3")
    refused(400, "INVALID_ARGUMENT", "GET", court.http + "/v1/messages?unconsumed=maybe")
    refused(405, "METHOD_NOT_ALLOWED", "DELETE", messages, "GET, POST")
    refused(405, "METHOD_NOT_ALLOWED", "POST", court.http + "/v1/health")
    refused(403, "FORBIDDEN", "POST", messages, "Origin", headers=JSON + ["Origin: http://example.com"],
            body={"type": "justx.v1.SentenceOrder", "payload": order})
    refused(403, "FORBIDDEN", "GET", court.http + "/v1/health", "Host",
            headers=["Host: attacker.example"])
    allow = subprocess.run([env.args.curl, "-s", "-i", "-X", "DELETE", messages],
                           capture_output=True, text=True).stdout
    assert "Allow: GET, POST" in allow, allow

    status, health = env.curl("GET", court.http + "/v1/health")
    counts = health["counts"]
    assert counts["sent"] == 2 and counts["inbox"] == 1 and counts["outboxPending"] == 0, health

    # ---- never on a non-loopback address ----
    conf = env.adapter_conf("KG-PRISON", dropbox=False)
    text = open(conf).read().replace("127.0.0.1:0", "0.0.0.0:0")
    open(conf, "w").write(text)
    result = subprocess.run([env.args.daemon, "-c", conf], capture_output=True, text=True,
                            timeout=20)
    assert result.returncode == 1, result
    assert "not a loopback address" in result.stderr and "adapter.conf:" in result.stderr, \
        result.stderr

    for daemon in (court, probation, prison):
        assert daemon.kill(15) == 0, "%s must exit 0 on SIGTERM" % daemon.name


run("adapter_http", test)
