"""adapter_harness.py — real processes for the adapter integration tests.

Each test gets a private directory under /tmp (short, because the adapters'
private ipc sockets live below it and a socket path has at most 107 bytes)
holding a copy of the development PKI, a gateway configuration made from
conf/gateway.conf with a free port, and adapter configurations per agency.
Processes are the real justx-gateway and justx-adapter binaries; HTTP goes
through curl, an independent client. Everything started is killed at the
end; the directory is kept when the test fails, and the log tails printed.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def parse_args():
    parser = argparse.ArgumentParser()
    for name in ("justx", "daemon", "gateway", "pki", "gateway-conf", "data", "curl"):
        parser.add_argument("--" + name, required=True)
    return parser.parse_args()


def free_port():
    """A port nobody listens on now. The gateway must keep one port across
    its restarts (the adapters are configured with it), so port 0 won't do."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


class Process:
    def __init__(self, name, argv, log_path):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.proc = None
        self.log_offset = 0

    def start(self):
        self.log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log)

    def log_since_start(self):
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            return log.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=20):
        regex = re.compile(pattern)

        def found():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s before logging %r" %
                                     (self.name, self.proc.returncode, pattern))
            return regex.search(self.log_since_start())
        return wait_for(found, timeout, "%s to log %r" % (self.name, pattern))

    def wait_count(self, text, count, timeout=20):
        return wait_for(lambda: self.log_since_start().count(text) >= count, timeout,
                        "%s to log %r %d times" % (self.name, text, count))

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("%s did not stop within 15 s of signal %d" % (self.name, sig))
        return self.proc.returncode if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class Env:
    def __init__(self, name):
        self.args = parse_args()
        self.dir = tempfile.mkdtemp(prefix="jx-%s-" % name, dir="/tmp")
        shutil.copytree(self.args.pki, os.path.join(self.dir, "pki"))
        self.gateway_port = free_port()
        self.processes = []
        self.gateway = None
        text = open(self.args.gateway_conf).read()
        text = text.replace('listen = "127.0.0.1:7443";',
                            'listen = "127.0.0.1:%d";' % self.gateway_port)
        text = text.replace('state_dir = ".";', 'state_dir = "gateway-state";')
        assert str(self.gateway_port) in text and "gateway-state" in text, \
            "conf/gateway.conf changed: the test cannot set its port and state_dir"
        self.gateway_conf = self.path("gateway.conf")
        with open(self.gateway_conf, "w") as f:
            f.write(text)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def data(self, name):
        return json.load(open(os.path.join(self.args.data, name)))

    # ---- gateway ----

    def start_gateway(self):
        if self.gateway is None:
            self.gateway = Process("justx-gateway",
                                   [self.args.gateway, "-c", self.gateway_conf],
                                   self.path("gateway.log"))
            self.processes.append(self.gateway)
        self.gateway.start()
        self.gateway.wait_log(r"event=started .*port=%d" % self.gateway_port)
        return self.gateway

    # ---- adapters ----

    def adapter_conf(self, agency, dropbox=True, http=True, poll_ms=50):
        lines = [
            "adapter: {",
            # relative to the file, which is in <test dir>/<agency>/
            '  agency_cert = "../pki/%s.pem"; agency_key = "../pki/%s.key";' % (agency, agency),
            '  ca = "../pki/ca.pem"; crls = [ "../pki/crl.pem" ];',
            '  state_dir = "state";',
            '  gateway = "127.0.0.1:%d"; gateway_name = "localhost";' % self.gateway_port,
            '  gateway_cert = "../pki/gateway.pem"; gateway_origin = "justx.demo/gateway";',
        ]
        if dropbox:
            lines.append('  dropbox = { dir = "box"; poll_ms = %d; };' % poll_ms)
        if http:
            lines.append('  http = { listen = "127.0.0.1:0"; max_body_bytes = 1048576; };')
        lines.append("};")
        os.makedirs(self.path(agency), exist_ok=True)
        conf = self.path(agency, "adapter.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def start_daemon(self, agency, existing=None, **conf_options):
        daemon = existing
        if daemon is None:
            conf = self.adapter_conf(agency, **conf_options)
            daemon = Process("justx-adapter " + agency, [self.args.daemon, "-c", conf],
                             self.path(agency, "daemon.log"))
            daemon.agency = agency
            daemon.conf = conf
            daemon.box = self.path(agency, "box")
            self.processes.append(daemon)
        daemon.start()
        started = daemon.wait_log(r"event=started .*http_port=(\d+)")
        daemon.http = "http://127.0.0.1:%s" % started.group(1)
        return daemon

    # ---- tools ----

    def justx(self, *argv, timeout=60):
        return subprocess.run([self.args.justx] + list(argv), capture_output=True, text=True,
                              timeout=timeout)

    def curl(self, method, url, body=None, headers=(), raw=None):
        """(status, parsed JSON body) of one request made by curl."""
        argv = [self.args.curl, "-s", "-S", "-X", method, "-o", "-", "-w", "\n%{http_code}",
                "--max-time", "20"]
        for header in headers:
            argv += ["-H", header]
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        if raw is not None:
            data = raw
        if data is not None:
            argv += ["--data-binary", "@-"]
        result = subprocess.run(argv + [url], input=data, capture_output=True, timeout=30)
        text = result.stdout.decode("utf-8", "replace")
        text, _, status = text.rpartition("\n")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return int(status or 0), parsed

    def finish(self, ok):
        for process in self.processes:
            try:
                process.kill()
            except AssertionError as problem:
                print(problem)
                ok = False
        if ok and not os.environ.get("JX_KEEP_TEST_DIR"):
            shutil.rmtree(self.dir, ignore_errors=True)
        elif ok:
            print("test directory kept (JX_KEEP_TEST_DIR): %s" % self.dir)
        else:
            print("test directory kept: %s" % self.dir)
            for process in self.processes:
                print("---- last lines of %s (%s)" % (process.name, process.log_path))
                try:
                    lines = open(process.log_path, errors="replace").read().splitlines()
                    print("\n".join(lines[-40:]))
                except OSError:
                    pass
        return ok


def write_atomically(path, document):
    """As an agency system should: a hidden name first, then rename."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, "." + name + ".tmp")
    with open(temporary, "w") as f:
        json.dump(document, f)
    os.rename(temporary, path)


def json_files(folder):
    try:
        return sorted(name for name in os.listdir(folder)
                      if name.endswith(".json") and not name.startswith("."))
    except FileNotFoundError:
        return []


def run(name, test):
    """Runs test(env); exit status 0 on success, 1 with the reason and logs."""
    env = Env(name)
    ok = False
    started = time.monotonic()
    try:
        test(env)
        ok = True
    except Exception as problem:  # a failed check or a crash of the test itself
        import traceback
        traceback.print_exc()
        print("FAILED: %s" % problem)
    ok = env.finish(ok)
    print("%s: %s in %.1f s" % (name, "passed" if ok else "FAILED", time.monotonic() - started))
    sys.exit(0 if ok else 1)
