"""adapter_restarts.py — nothing lost, nothing doubled, across kill -9.

Part 0: the two states a crash can leave in the drop-box's work folder are
made by hand: a file whose message id is fixed but never sealed (it must be
sent under that id), and one already sealed and sent (it must not be sent
again).
Part 1: three hundred sentence orders wait in the court's drop-box outbox;
the court's daemon is killed with SIGKILL right after it picked up the
first files, restarted, killed again once some were sent, and restarted for
good.
Part 2: forty more are POSTed over HTTP while the gateway is killed with
SIGKILL and restarted, and probation's daemon is killed and restarted; the
prison's daemon starts only now, so everything waits in the gateway's spool
for it.

At the end every order is in the inbox/ of probation and of the prison
exactly once (one file per case id, whatever ids it was sent under), the
court's sent/ holds one file per drop-box order, and the court has a
DELIVERED receipt file from both recipients for every message.
"""

import json
import os
import signal

from adapter_harness import json_files, run, wait_for, write_atomically

COUNT = 40       # HTTP sends in part 2
BOX_COUNT = 300  # drop-box files in part 1: enough that a kill lands in the middle


def case_ids(inbox):
    """Case id -> number of inbox files carrying it."""
    seen = {}
    for name in json_files(inbox):
        try:
            case = json.load(open(os.path.join(inbox, name)))["caseId"]
        except (OSError, ValueError, KeyError):
            continue
        seen[case] = seen.get(case, 0) + 1
    return seen


def test(env):
    order = env.data("sentence_order.json")
    env.start_gateway()
    court = env.start_daemon("KG-COURT-BISHKEK")
    probation = env.start_daemon("KG-PROBATION")

    # ---- part 0: the two states a crash can leave in the drop-box's work/,
    # made by hand: a file whose id is fixed but that was never sealed, and
    # one that was sealed and sent but not yet moved to sent/ ----
    sealed_id = "01890a5d-ac96-774b-bcce-b302099a0002"
    status, answer = env.curl("POST", court.http + "/v1/messages",
                              headers=["Content-Type: application/json"],
                              body={"type": "justx.v1.SentenceOrder", "caseId": "WORK-SEALED",
                                    "messageId": sealed_id, "payload": order})
    assert status == 202, (status, answer)
    court.kill(signal.SIGTERM)
    work = os.path.join(court.box, ".state", "work")
    unsealed_id = "01890a5d-ac96-774b-bcce-b302099a0003"
    write_atomically(os.path.join(work, unsealed_id + ".json"),
                     {"type": "justx.v1.SentenceOrder", "caseId": "WORK-UNSEALED",
                      "payload": order})
    write_atomically(os.path.join(work, sealed_id + ".json"),
                     {"type": "justx.v1.SentenceOrder", "caseId": "WORK-SEALED",
                      "payload": order})

    # ---- part 1: the sending daemon killed right after picking files up ----
    outbox = os.path.join(court.box, "outbox")
    for i in range(BOX_COUNT):
        write_atomically(os.path.join(outbox, "order-%03d.json" % i),
                         {"type": "justx.v1.SentenceOrder", "caseId": "BOX-%03d" % i,
                          "payload": order})
    env.start_daemon("KG-COURT-BISHKEK", existing=court)
    court.wait_log(r"event=dropbox_picked_up")
    court.kill(signal.SIGKILL)
    left = len(json_files(outbox))
    assert left > 0, "the kill came after every file was taken; not a test of a crash"
    log = court.log_since_start()
    assert "event=dropbox_resumed message_id=%s" % unsealed_id in log, log
    assert "event=dropbox_sent file=%s.json message_id=%s type=justx.v1.SentenceOrder " \
           "duplicate=true" % (sealed_id, sealed_id) in log, log
    env.start_daemon("KG-COURT-BISHKEK", existing=court)
    court.wait_log(r"event=dropbox_sent")
    court.kill(signal.SIGKILL)
    env.start_daemon("KG-COURT-BISHKEK", existing=court)
    wait_for(lambda: not json_files(outbox) and not json_files(work), 30,
             "the court's outbox and work folders to be empty")

    # ---- part 2: HTTP sends while the gateway and probation are killed ----
    for i in range(COUNT):
        if i == 10:
            env.gateway.kill(signal.SIGKILL)
        if i == 20:
            env.start_gateway()
        if i == 25:
            probation.kill(signal.SIGKILL)
        if i == 30:
            env.start_daemon("KG-PROBATION", existing=probation)
        status, answer = env.curl("POST", court.http + "/v1/messages",
                                  headers=["Content-Type: application/json"],
                                  body={"type": "justx.v1.SentenceOrder",
                                        "caseId": "HTTP-%03d" % i, "payload": order})
        assert status == 202, (i, status, answer)
    prison = env.start_daemon("KG-PRISON")

    expected = ({"BOX-%03d" % i for i in range(BOX_COUNT)} |
                {"HTTP-%03d" % i for i in range(COUNT)} | {"WORK-SEALED", "WORK-UNSEALED"})
    for daemon in (probation, prison):
        inbox = os.path.join(daemon.box, "inbox")
        wait_for(lambda: set(case_ids(inbox)) >= expected, 60,
                 "all %d orders in %s's inbox" % (len(expected), daemon.agency))
        seen = case_ids(inbox)
        doubled = {case: n for case, n in seen.items() if n != 1}
        assert not doubled, "received more than once at %s: %s" % (daemon.agency, doubled)
        assert set(seen) == expected, set(seen) ^ expected

    sent = json_files(os.path.join(court.box, "sent"))
    assert len(sent) == BOX_COUNT + 2, "sent/ has %d files, not %d" % (len(sent), BOX_COUNT + 2)
    receipts = os.path.join(court.box, "receipts")

    def all_delivered():
        names = set(json_files(receipts))
        return all(id_ + "_DELIVERED_KG-PROBATION.json" in names and
                   id_ + "_DELIVERED_KG-PRISON.json" in names
                   for id_ in (name[:-len(".json")] for name in sent))
    wait_for(all_delivered, 30, "DELIVERED receipt files from both recipients for the drop-box "
             "orders")
    status, health = env.curl("GET", court.http + "/v1/health")
    assert health["counts"]["sent"] == BOX_COUNT + COUNT + 2, health
    assert health["counts"]["outboxPending"] == 0, health
    total = 2 * (BOX_COUNT + COUNT + 2)
    wait_for(lambda: len([n for n in json_files(receipts) if "_DELIVERED_" in n]) == total,
             30, "%d DELIVERED receipt files at the court" % total)

    for daemon in (court, probation, prison):
        assert daemon.kill(signal.SIGTERM) == 0, "%s must exit 0 on SIGTERM" % daemon.name


run("adapter_restarts", test)
