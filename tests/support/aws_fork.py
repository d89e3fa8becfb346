"""The real AWS CLI, without paying for an interpreter per call.

A runbook makes ~150 `aws` calls; each one starts Python and loads botocore's models (~2.5 s
on the shared 2-core machine), which is most of a whole-estate run. This server imports
the AWS CLI (awscli.clidriver) once, builds its command tables for the services runbooks
use, then forks a child per call: the child takes the caller's argv, environment, working
directory and stdin/stdout/stderr (passed over a Unix socket) and runs the CLI's own `main`,
so parsing, parameter validation, waiters, --query and --output are the real CLI's. The
`aws` on PATH is a small client (`python -S`, no imports beyond the socket) that forwards
its call and exits with the CLI's exit code.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLIENT = r'''#!{python} -S
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect({socket_path!r})
argv = [{extra}] + sys.argv[1:]
message = json.dumps({{"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}})
socket.send_fds(s, [message.encode()], [0, 1, 2])
code = s.recv(16)
sys.exit(int(code or b"255"))
'''


def _serve(path: str) -> None:
    from awscli.clidriver import create_clidriver

    driver = create_clidriver()
    # Warm what every call would build again: the command tables and service models.
    table = driver._get_command_table()
    for service in ("rds", "kms", "sts"):
        commands = table[service]._get_command_table()
        for name in list(commands)[:1]:
            _ = commands[name]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path)
    server.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    print("ready", flush=True)
    while True:
        conn, _ = server.accept()
        data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:  # the child: one CLI call, with the caller's files and environment
            server.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            sys.stdin = os.fdopen(0, "r", closefd=False)
            sys.stdout = os.fdopen(1, "w", closefd=False)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            os.environ.clear()
            os.environ.update(request["env"])
            os.chdir(request["cwd"])
            try:
                code = driver.main(request["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 255
            sys.stdout.flush()
            sys.stderr.flush()
            conn.send(str(code).encode())
            os._exit(0)
        for fd in fds:
            os.close(fd)
        # The parent does not wait for the call: the child answers on the connection.
        conn.close()
        while True:
            try:
                done, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if done == 0:
                break


@contextmanager
def fast_aws(bin_dir: Path, endpoint_url: str, env: dict[str, str]) -> Iterator[Path]:
    """`bin_dir/aws`: the real AWS CLI with --endpoint-url, run by a forking server."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = str(bin_dir / "aws.sock")
    proc = subprocess.Popen([sys.executable, __file__, path], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while proc.stdout.readline().strip() != "ready":
            assert time.monotonic() < deadline and proc.poll() is None, "aws server died"
        client = bin_dir / "aws"
        client.write_text(CLIENT.format(python=sys.executable, socket_path=path,
                                        extra=f'"--endpoint-url", {endpoint_url!r}'))
        client.chmod(0o755)
        yield client
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    _serve(sys.argv[1])
