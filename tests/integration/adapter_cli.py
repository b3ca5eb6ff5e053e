"""adapter_cli.py — the justx CLI as short-lived adapters (the C library
through its API), next to a running daemon on the same state_dir, across a
real gateway.

justx send --wait DELIVERED is answered once `justx recv` at probation has
taken the message; recv --keep hands the same message out again, recv
without it never again; receipts and status read what the adapters stored;
a REJECTED message makes send fail with the reason. CLI commands run on the
court's state_dir while the court's daemon runs on it: afterwards the daemon
must still reconnect after a gateway kill -9 (each process has its own
private dialer socket). A message sent with the gateway down waits in the
shared outbox and is sent by the daemon once the gateway is back.
"""

import json
import os
import signal
import subprocess

from adapter_harness import json_files, run, wait_for


def test(env):
    order_file = os.path.join(env.args.data, "sentence_order.json")
    order = env.data("sentence_order.json")
    env.start_gateway()
    court_daemon = env.start_daemon("KG-COURT-BISHKEK", dropbox=False)
    prison = env.start_daemon("KG-PRISON", http=False)
    court = court_daemon.conf
    probation = env.adapter_conf("KG-PROBATION", dropbox=False, http=False)

    # ---- help and usage ----
    for command in ("send", "recv", "receipts", "status"):
        result = env.justx(command, "--help")
        assert result.returncode == 0 and ("usage: justx " + command) in result.stdout, result
    result = env.justx("send", "-c", court, "--json", order_file)
    assert result.returncode == 2 and "--type" in result.stderr, result
    result = env.justx("send", "-c", court, "--type", "justx.v1.SentenceOrder", "--json",
                       order_file, "--wait", "SOMETIME")
    assert result.returncode == 2, result

    # ---- send --wait DELIVERED, answered by recv at probation ----
    receiver = subprocess.Popen([env.args.justx, "recv", "-c", probation, "--timeout", "30"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result = env.justx("send", "-c", court, "--type", "justx.v1.SentenceOrder", "--json",
                       order_file, "--case-id", "CLI-1", "--wait", "DELIVERED", "--timeout", "30")
    assert result.returncode == 0, result
    message_id = result.stdout.splitlines()[0]
    assert len(message_id) == 36, result.stdout
    assert "DELIVERED for KG-PROBATION" in result.stderr, result.stderr
    assert "DELIVERED for KG-PRISON" in result.stderr, result.stderr
    out, err = receiver.communicate(timeout=30)
    assert receiver.returncode == 0, (out, err)
    assert out.startswith("message %s\nfrom: KG-COURT-BISHKEK\ntype: justx.v1.SentenceOrder\n"
                          "case: CLI-1\npayload:\n" % message_id), out
    assert json.loads(out.split("payload:\n", 1)[1]) == order
    # taken: never again
    result = env.justx("recv", "-c", probation, "--timeout", "0")
    assert result.returncode == 1 and "no message" in result.stderr, result
    # and the prison's daemon has it in its drop-box
    inbox = os.path.join(prison.box, "inbox")
    wait_for(lambda: "KG-COURT-BISHKEK_%s.json" % message_id in json_files(inbox), 10,
             "the CLI's message in the prison's inbox/")

    # ---- recv --keep ----
    result = env.justx("send", "-c", court, "--type", "justx.v1.SentenceOrder", "--json",
                       order_file, "--case-id", "CLI-2", "--wait", "ACCEPTED")
    assert result.returncode == 0, result
    second = result.stdout.splitlines()[0]
    seen = []
    for keep in (True, True, False):
        argv = ["recv", "-c", probation, "--json", "--timeout", "20"] + (["--keep"] if keep else [])
        result = env.justx(*argv)
        assert result.returncode == 0, result
        message = json.loads(result.stdout)
        seen.append(message["messageId"])
        assert message["caseId"] == "CLI-2" and message["payload"] == order
    assert seen == [second] * 3, seen
    result = env.justx("recv", "-c", probation, "--timeout", "1")
    assert result.returncode == 1, result

    # ---- receipts and status ----
    result = env.justx("receipts", "-c", court, "--message-id", message_id)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert "DELIVERED, 2 delivered" in lines[0], lines
    assert sum(" ACCEPTED " in line for line in lines) == 1, lines
    assert sum(" DELIVERED " in line for line in lines) == 2, lines
    result = env.justx("receipts", "-c", court, "--json")
    receipts = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["messageId"] for r in receipts} == {message_id, second}, receipts
    assert all("evidence" in r for r in receipts)
    result = env.justx("status", "-c", court)
    assert result.returncode == 0 and "link:      CONNECTED" in result.stdout, result
    result = env.justx("status", "-c", probation, "--json")
    status = json.loads(result.stdout)
    assert status["link"] == "CONNECTED" and status["counts"]["inbox"] == 2, status
    assert status["counts"]["inboxUnconsumed"] == 0, status

    # ---- a binary payload: serialized protobuf, as `protoc --encode` writes it ----
    binary = env.path("status.bin")
    with open(binary, "wb") as f:
        # StatusUpdate{case_number: "UD-9/26", status: STATUS_UNDER_SUPERVISION}
        f.write(b"\x1a\x07UD-9/26\x20\x02")
    result = env.justx("send", "-c", probation, "--type", "justx.v1.StatusUpdate", "--binary",
                       binary, "--to", "KG-COURT-BISHKEK", "--case-id", "CLI-BIN",
                       "--correlation-id", message_id, "--wait", "ACCEPTED")
    assert result.returncode == 0, result
    update_id = result.stdout.splitlines()[0]

    def at_court():
        status, message = env.curl("GET", court_daemon.http + "/v1/messages/KG-PROBATION/" +
                                   update_id)
        return status == 200 and message
    message = wait_for(at_court, 20, "the binary status update at the court's daemon")
    assert message["payload"] == {"caseNumber": "UD-9/26",
                                  "status": "STATUS_UNDER_SUPERVISION"}, message
    assert message["correlationId"] == message_id and message["recipients"] == \
        ["KG-COURT-BISHKEK"], message
    result = env.justx("send", "-c", probation, "--type", "justx.v1.StatusUpdate", "--binary",
                       order_file, "--wait", "ACCEPTED")
    assert result.returncode == 1 and "PAYLOAD_NOT_DECLARED_TYPE" in result.stderr, result

    # ---- REJECTED: no route carries a status update from the court ----
    update = os.path.join(env.args.data, "status_update.json")
    result = env.justx("send", "-c", court, "--type", "justx.v1.StatusUpdate", "--json", update,
                       "--wait", "ACCEPTED")
    assert result.returncode == 1 and "NOT_PERMITTED" in result.stderr, result

    # ---- the daemon shares the state_dir with the commands above and still
    # reconnects after the gateway is killed and restarted ----
    env.gateway.kill(signal.SIGKILL)
    court_daemon.wait_log(r"event=link state=BACKING_OFF")
    # With the gateway down: the message waits in the outbox.
    result = env.justx("send", "-c", court, "--type", "justx.v1.SentenceOrder", "--json",
                       order_file, "--case-id", "CLI-OFFLINE", "--timeout", "1")
    assert result.returncode == 0 and "stays in the outbox" in result.stderr, result
    offline = result.stdout.splitlines()[0]
    env.start_gateway()

    def delivered_to_prison():
        return "KG-COURT-BISHKEK_%s.json" % offline in json_files(inbox)
    wait_for(delivered_to_prison, 30, "the message sent while the gateway was down, delivered "
             "through the court daemon's link")
    status, health = env.curl("GET", court_daemon.http + "/v1/health")
    assert health["link"]["state"] == "CONNECTED", health
    result = env.justx("receipts", "-c", court, "--message-id", offline)
    assert " ACCEPTED " in result.stdout, result

    for daemon in (court_daemon, prison):
        assert daemon.kill(15) == 0, "%s must exit 0 on SIGTERM" % daemon.name


run("adapter_cli", test)
