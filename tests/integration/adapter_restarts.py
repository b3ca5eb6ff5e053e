"""adapter_restarts.py — nothing lost, nothing doubled, across kill -9.

Part 1: forty sentence orders wait in the court's drop-box outbox; the
court's daemon is killed with SIGKILL right after it picked up the first
file, restarted, killed again once a few were sent, and restarted for good.
Part 2: forty more are POSTed over HTTP while the gateway is killed with
SIGKILL and restarted, and probation's daemon is killed and restarted; the
prison's daemon starts only now, so all eighty wait in the gateway's spool
for it.

At the end every order is in the inbox/ of probation and of the prison
exactly once (one file per case id, whatever ids it was sent under), the
court's sent/ holds eighty files, and the court has a DELIVERED receipt file
from both recipients for every one of them.
"""

import json
import os
import signal

from adapter_harness import json_files, run, wait_for, write_atomically

COUNT = 40


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

    # ---- part 1: the sending daemon killed right after picking files up ----
    court = env.start_daemon("KG-COURT-BISHKEK")
    probation = env.start_daemon("KG-PROBATION")
    court.kill(signal.SIGTERM)
    outbox = os.path.join(court.box, "outbox")
    for i in range(COUNT):
        write_atomically(os.path.join(outbox, "order-%03d.json" % i),
                         {"type": "justx.v1.SentenceOrder", "caseId": "BOX-%03d" % i,
                          "payload": order})
    env.start_daemon("KG-COURT-BISHKEK", existing=court)
    court.wait_log(r"event=dropbox_picked_up")
    court.kill(signal.SIGKILL)
    first_pass = COUNT - len(json_files(outbox))
    env.start_daemon("KG-COURT-BISHKEK", existing=court)
    court.wait_count("event=dropbox_sent", 5)
    court.kill(signal.SIGKILL)
    env.start_daemon("KG-COURT-BISHKEK", existing=court)
    wait_for(lambda: not json_files(outbox), 20, "the court's outbox to be empty")
    assert first_pass < COUNT, "the first kill came after everything was taken; not a test"

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

    expected = {"BOX-%03d" % i for i in range(COUNT)} | {"HTTP-%03d" % i for i in range(COUNT)}
    for daemon in (probation, prison):
        inbox = os.path.join(daemon.box, "inbox")
        wait_for(lambda: set(case_ids(inbox)) >= expected, 45,
                 "all %d orders in %s's inbox" % (len(expected), daemon.agency))
        seen = case_ids(inbox)
        doubled = {case: n for case, n in seen.items() if n != 1}
        assert not doubled, "received more than once at %s: %s" % (daemon.agency, doubled)
        assert set(seen) == expected, set(seen) ^ expected

    sent = json_files(os.path.join(court.box, "sent"))
    assert len(sent) == COUNT, "the drop-box sent %d files, not %d" % (len(sent), COUNT)
    receipts = os.path.join(court.box, "receipts")

    def all_delivered():
        names = set(json_files(receipts))
        return all(id_ + "_DELIVERED_KG-PROBATION.json" in names and
                   id_ + "_DELIVERED_KG-PRISON.json" in names
                   for id_ in (name[:-len(".json")] for name in sent))
    wait_for(all_delivered, 30, "DELIVERED receipt files from both recipients for the drop-box "
             "orders")
    status, health = env.curl("GET", court.http + "/v1/health")
    assert health["counts"]["sent"] == 2 * COUNT, health
    assert health["counts"]["outboxPending"] == 0, health
    wait_for(lambda: len([n for n in json_files(receipts) if "_DELIVERED_" in n]) == 4 * COUNT,
             30, "%d DELIVERED receipt files at the court" % (4 * COUNT))

    for daemon in (court, probation, prison):
        assert daemon.kill(signal.SIGTERM) == 0, "%s must exit 0 on SIGTERM" % daemon.name


run("adapter_restarts", test)
