"""adapter_dropbox.py — the daemon's drop-box across a real gateway.

The court's agency system drops a sentence order into outbox/; it is sent
(sent/<id>.json), the gateway fans it out to probation and prison, whose
daemons write it to inbox/<sender>_<id>.json, and the court's receipts/ gets
ACCEPTED and one DELIVERED per recipient. Malformed files go to rejected/
with a .error naming the code and the JSON path; files still being written
(hidden or .tmp) are left alone; a message the routes refuse comes back as a
REJECTED receipt file; a file naming a messageId already sent is not sent
twice.
"""

import copy
import json
import os
import stat

from adapter_harness import json_files, run, wait_for, write_atomically


def test(env):
    order = env.data("sentence_order.json")
    env.start_gateway()
    court = env.start_daemon("KG-COURT-BISHKEK")
    probation = env.start_daemon("KG-PROBATION")
    prison = env.start_daemon("KG-PRISON", http=False)
    for daemon in (court, probation, prison):
        daemon.wait_log(r"event=link state=CONNECTED")

    outbox = os.path.join(court.box, "outbox")
    # Files an agency system is still writing: never touched.
    with open(os.path.join(outbox, "half-written.json.tmp"), "w") as f:
        f.write('{"type": "justx.v1.Sente')
    with open(os.path.join(outbox, ".hidden.json"), "w") as f:
        f.write("{")

    submission = {"type": "justx.v1.SentenceOrder", "caseId": "DROPBOX-1",
                  "correlationId": "01890a5d-ac96-774b-bcce-b302099a0001", "expiresInSeconds": 86400,
                  "payload": order}
    write_atomically(os.path.join(outbox, "order-1.json"), submission)

    sent = wait_for(lambda: json_files(os.path.join(court.box, "sent")), 20,
                    "the order in the court's sent/")
    assert len(sent) == 1, sent
    message_id = sent[0][:-len(".json")]
    assert json.load(open(os.path.join(court.box, "sent", sent[0]))) == submission, \
        "sent/ must hold the submission as the agency system wrote it"
    assert "order-1.json" not in os.listdir(outbox)

    receipts = os.path.join(court.box, "receipts")
    expected = {message_id + "_ACCEPTED.json",
                message_id + "_DELIVERED_KG-PROBATION.json",
                message_id + "_DELIVERED_KG-PRISON.json"}
    wait_for(lambda: expected <= set(json_files(receipts)), 20,
             "ACCEPTED and two DELIVERED receipt files at the court")
    accepted = json.load(open(os.path.join(receipts, message_id + "_ACCEPTED.json")))
    assert accepted["status"] == "ACCEPTED" and accepted["messageId"] == message_id, accepted
    assert sorted(accepted["recipients"]) == ["KG-PRISON", "KG-PROBATION"], accepted
    assert len(accepted["evidence"]) > 100, "the receipt's bytes are kept as evidence"
    delivered = json.load(open(os.path.join(receipts, message_id + "_DELIVERED_KG-PRISON.json")))
    assert delivered["recipient"] == "KG-PRISON" and delivered["status"] == "DELIVERED"

    for daemon in (probation, prison):
        name = "KG-COURT-BISHKEK_%s.json" % message_id
        inbox = os.path.join(daemon.box, "inbox")
        wait_for(lambda: name in json_files(inbox), 10, "the order in %s's inbox" % daemon.agency)
        received = json.load(open(os.path.join(inbox, name)))
        assert received["sender"] == "KG-COURT-BISHKEK", received
        assert received["messageId"] == message_id
        assert received["type"] == "justx.v1.SentenceOrder"
        assert received["caseId"] == "DROPBOX-1"
        assert received["correlationId"] == submission["correlationId"]
        assert received["payload"] == order, "the payload must arrive as sent"
        assert len(received["signerCertificateSha256"]) == 64
        assert stat.S_IMODE(os.stat(os.path.join(inbox, name)).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(inbox).st_mode) == 0o700
        assert not [n for n in os.listdir(inbox) if n.startswith(".")], "no temporary left"

    # Taken from the store once written: the HTTP API lists it as consumed.
    status, listing = env.curl("GET", probation.http + "/v1/messages?unconsumed=true")
    assert status == 200 and listing["messages"] == [], listing
    status, listing = env.curl("GET", probation.http + "/v1/messages")
    assert [m["messageId"] for m in listing["messages"]] == [message_id], listing
    assert listing["messages"][0]["consumed"] is True

    # ---- malformed files ----
    bad_to = copy.deepcopy(submission)
    bad_to["to"] = ["KG-PROBATION", 5]
    bad_payload = copy.deepcopy(submission)
    bad_payload["payload"]["person"]["sex"] = "SEX_UNHEARD_OF"
    unknown = {"type": "justx.v1.SentenceOrder", "priority": "high", "payload": order}
    no_type = {"payload": order}
    bad_correlation = dict(submission, correlationId="court-file-17")
    write_atomically(os.path.join(outbox, "bad-to.json"), bad_to)
    write_atomically(os.path.join(outbox, "bad-payload.json"), bad_payload)
    write_atomically(os.path.join(outbox, "unknown-member.json"), unknown)
    write_atomically(os.path.join(outbox, "no-type.json"), no_type)
    write_atomically(os.path.join(outbox, "bad-correlation.json"), bad_correlation)
    with open(os.path.join(outbox, ".syntax.json"), "w") as f:
        f.write('{"type": "justx.v1.SentenceOrder", "payload": {')
    os.rename(os.path.join(outbox, ".syntax.json"), os.path.join(outbox, "syntax.json"))

    rejected = os.path.join(court.box, "rejected")
    names = ["bad-to.json", "bad-payload.json", "unknown-member.json", "no-type.json",
             "bad-correlation.json", "syntax.json"]
    wait_for(lambda: all(os.path.exists(os.path.join(rejected, n + ".error")) and
                         os.path.exists(os.path.join(rejected, n)) for n in names), 20,
             "six malformed files in rejected/ with their .error files")
    reasons = {n: open(os.path.join(rejected, n + ".error")).read() for n in names}
    assert reasons["bad-to.json"].startswith("JSON_WRONG_TYPE: message.to[1]: "), reasons
    assert reasons["bad-payload.json"].startswith(
        "JSON_BAD_VALUE: message.payload: sentenceOrder.person.sex: "), reasons
    assert "SEX_UNHEARD_OF" in reasons["bad-payload.json"], reasons
    assert reasons["unknown-member.json"].startswith(
        "JSON_UNKNOWN_FIELD: message.priority "), reasons
    assert reasons["no-type.json"].startswith("INVALID_ARGUMENT: message.type is missing"), reasons
    assert reasons["bad-correlation.json"].startswith(
        "JSON_BAD_VALUE: message.correlationId: "), reasons
    assert reasons["syntax.json"].startswith("JSON_SYNTAX: "), reasons
    assert "line 1" in reasons["syntax.json"], reasons
    # The rejected file is the agency system's, byte for byte.
    assert json.load(open(os.path.join(rejected, "bad-to.json"))) == bad_to
    assert sorted(os.listdir(outbox)) == [".hidden.json", "half-written.json.tmp"], \
        os.listdir(outbox)
    assert len(json_files(os.path.join(court.box, "sent"))) == 1, "nothing malformed was sent"

    # ---- the gateway refuses what no route carries: a REJECTED receipt file ----
    update = {"type": "justx.v1.StatusUpdate", "caseId": "DROPBOX-2",
              "payload": env.data("status_update.json")}
    write_atomically(os.path.join(outbox, "status.json"), update)

    def rejected_receipt():
        return [n for n in json_files(receipts) if n.endswith("_REJECTED.json")]
    name = wait_for(rejected_receipt, 20, "a REJECTED receipt file for the status update")[0]
    refused = json.load(open(os.path.join(receipts, name)))
    assert refused["reasonCode"] == "NOT_PERMITTED", refused
    assert refused["reason"], "a sentence a person understands"
    assert len(json_files(os.path.join(court.box, "sent"))) == 2

    # ---- a messageId given twice is sent once ----
    fixed = copy.deepcopy(submission)
    fixed["messageId"] = "01890a5d-ac96-774b-bcce-b302099a8057"
    fixed["caseId"] = "DROPBOX-3"
    write_atomically(os.path.join(outbox, "fixed-1.json"), fixed)
    inbox = os.path.join(probation.box, "inbox")
    fixed_name = "KG-COURT-BISHKEK_%s.json" % fixed["messageId"]
    wait_for(lambda: fixed_name in json_files(inbox), 20, "the message with a given id")
    write_atomically(os.path.join(outbox, "fixed-2.json"), fixed)
    court.wait_log(r"event=dropbox_sent file=fixed-2.json message_id=%s .*duplicate=true"
                   % fixed["messageId"])
    wait_for(lambda: not json_files(outbox), 10, "the outbox to be empty")
    status, listing = env.curl("GET", probation.http + "/v1/messages")
    ids = [m["messageId"] for m in listing["messages"]]
    assert ids.count(fixed["messageId"]) == 1, ids

    # ---- EXPIRED: the prison is away longer than the message may wait ----
    assert prison.kill(15) == 0
    short = {"type": "justx.v1.SentenceOrder", "to": ["KG-PRISON"], "caseId": "DROPBOX-4",
             "expiresInSeconds": 1, "payload": order}
    write_atomically(os.path.join(outbox, "short.json"), short)

    def expired_receipt():
        return [n for n in json_files(receipts) if n.endswith("_EXPIRED_KG-PRISON.json")]
    name = wait_for(expired_receipt, 20, "an EXPIRED receipt file for the prison")[0]
    expired_id = name.split("_")[0]
    expired = json.load(open(os.path.join(receipts, name)))
    assert expired["status"] == "EXPIRED" and expired["recipient"] == "KG-PRISON", expired
    env.start_daemon("KG-PRISON", existing=prison)
    prison.wait_log(r"event=link state=CONNECTED")
    write_atomically(os.path.join(outbox, "after.json"), dict(submission, caseId="DROPBOX-5"))
    prison_inbox = os.path.join(prison.box, "inbox")

    def prison_cases():
        return {json.load(open(os.path.join(prison_inbox, n)))["caseId"]
                for n in json_files(prison_inbox)}
    wait_for(lambda: "DROPBOX-5" in prison_cases(), 20, "the next order at the prison")
    assert "DROPBOX-4" not in prison_cases(), "an expired message must not be delivered"
    assert not os.path.exists(os.path.join(prison_inbox, "KG-COURT-BISHKEK_%s.json" % expired_id))

    # ---- SIGTERM stops cleanly ----
    for daemon in (court, probation, prison):
        assert daemon.kill(15) == 0, "%s must exit 0 on SIGTERM" % daemon.name
        assert "event=stopped" in daemon.log_since_start()


run("adapter_dropbox", test)
