"""adapter_config.py — the adapter configuration loader, through
`justx-adapter --check` and `justx status`: the example conf/adapter.conf is
valid, relative paths are taken from the file's directory, and every kind
of mistake is an error naming the file, the line and the setting.
"""

import os
import subprocess

from adapter_harness import run

GOOD = """adapter: {
  agency_cert = "../pki/KG-PROBATION.pem";
  agency_key = "../pki/KG-PROBATION.key";
  ca = "../pki/ca.pem";
  crls = [ "../pki/crl.pem" ];
  state_dir = "state";
  gateway = "127.0.0.1:7443";
  gateway_cert = "../pki/gateway.pem";
  gateway_origin = "justx.demo/gateway";
  dropbox = { dir = "box"; };
  http = { listen = "127.0.0.1:8480"; };
};
"""


def test(env):
    daemon = env.args.daemon
    example = os.path.join(os.path.dirname(env.args.gateway_conf), "adapter.conf")
    result = subprocess.run([daemon, "--check", "-c", example], capture_output=True, text=True)
    assert result.returncode == 0 and "valid" in result.stdout, result

    os.makedirs(env.path("conf"))
    path = env.path("conf", "adapter.conf")

    def check(text):
        with open(path, "w") as f:
            f.write(text)
        return subprocess.run([daemon, "--check", "-c", path], capture_output=True, text=True)

    result = check(GOOD)
    assert result.returncode == 0, result
    # relative to the file, not to the working directory
    assert "state_dir %s" % env.path("conf", "state") in result.stdout, result.stdout
    assert "drop-box %s" % env.path("conf", "box") in result.stdout, result.stdout

    mistakes = [
        # (change, line, words the error must contain)
        (("agency_key", "agency_kye"), 3, "unknown setting 'agency_kye' in adapter (did you mean "
                                          "'agency_key'?)"),
        (('dir = "box";', 'dir = "box"; poll_ms = 5;'), 10, "'poll_ms' in adapter.dropbox is 5"),
        (('listen = "127.0.0.1:8480"', 'listen = "0.0.0.0:8480"'), 11, "not a loopback address"),
        (('listen = "127.0.0.1:8480"', 'listen = "192.168.1.5:8480"'), 11,
         "not a loopback address"),
        (('gateway = "127.0.0.1:7443";', 'gateway = "127.0.0.1";'), 7, "'gateway' in adapter must "
                                                                       "be \"host:port\""),
        (('  gateway_origin = "justx.demo/gateway";\n', ''), 1,
         "missing required setting 'gateway_origin' in adapter"),
        (('crls = [ "../pki/crl.pem" ];', 'crls = "../pki/crl.pem";'), 5, "must be an array"),
        (('state_dir = "state";', 'state_dir = 5;'), 6, "'state_dir' in adapter must be a string"),
        (('http = {', 'http = { poll_ms = 100;'), 11, "it belongs in adapter.dropbox"),
        (('ca = "../pki/ca.pem";', 'ca = ;'), 4, "syntax error"),
    ]
    for (old, new), line, words in mistakes:
        assert old in GOOD, old
        result = check(GOOD.replace(old, new, 1))
        assert result.returncode == 1, (new, result)
        assert "%s:%d: " % (path, line) in result.stderr, (new, line, result.stderr)
        assert words in result.stderr, (new, words, result.stderr)

    result = subprocess.run([daemon, "--check", "-c", env.path("missing.conf")],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "missing.conf" in result.stderr, result
    result = subprocess.run([daemon], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr, result

    # The CLI reads the same file and says what is wrong the same way.
    check(GOOD.replace("agency_key", "agency_kye"))
    result = env.justx("status", "-c", path, "--timeout", "0")
    assert result.returncode == 1 and "%s:3: unknown setting 'agency_kye'" % path in \
        result.stderr, result


run("adapter_config", test)
