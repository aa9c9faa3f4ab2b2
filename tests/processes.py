"""Real processes for the multi-process tests: free ports on 127.0.0.1, and a wait bounded in time
that kills every process on every exit path."""
import socket
import subprocess
import sys
import time

import pytest


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
                             stderr=subprocess.STDOUT, text=True, env=env) for argv in argvs]


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
