"""Real processes for the multi-process tests: free ports on 127.0.0.1, and a wait bounded in time
that kills every process on every exit path."""
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start(script, argvs, env):
    """One ``python script *argv`` per entry of ``argvs``, output captured."""
    return [subprocess.Popen([sys.executable, str(script)] + [str(a) for a in argv], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, env=env) for argv in argvs]


def finish(procs, timeout, what="the processes"):
    """Wait for ``procs`` (all within ``timeout`` seconds), assert each exited 0 (their output's
    tails in the message), and kill any still running on every exit path."""
    deadline = time.time() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1, deadline - time.time()))
        logs = [p.stdout.read()[-3000:] for p in procs]
        assert all(p.returncode == 0 for p in procs), "\n----\n".join(logs)
        return logs
    except subprocess.TimeoutExpired:
        pytest.fail("%s did not finish within %d s" % (what, timeout))
    finally:
        for p in procs:  # every exit path: no process outlives the test
            if p.poll() is None:
                p.kill()
                p.wait()


def one_or_two(tmp_path, script_text, two, timeout, **env):
    """``script_text`` (argv: index, port, result file) run as one process (index -1) or as two
    (0 and 1, ``port`` free for their rendezvous), the tests folder on its path and ``env`` set:
    {key: array} of the JSON that process 0 (or the one) writes."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "process.py"
    script.write_text(script_text)
    result = tmp_path / ("two.json" if two else "one.json")
    port = free_ports(1)[0]
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    environ.update(env)
    finish(start(script, [[i, port, result] for i in ((0, 1) if two else (-1,))], environ), timeout)
    with open(str(result)) as f:
        return {k: np.array(v) for k, v in json.load(f).items()}
