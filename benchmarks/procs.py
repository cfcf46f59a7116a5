"""Process plumbing for the benchmark runner: build, pin, start, sample and stop processes.

Everything here reads /proc directly (Linux only) so that the runner needs only the standard
library. Processes are started pinned to one CPU each (server and load generator on different
cores) and are stopped by their own pid, never by name.
"""

from __future__ import annotations

import os
import resource
import select
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def compile_c(source: Path, output: Path, libraries: tuple[str, ...] = ()) -> None:
    """Compile one C file with gcc -O2 unless the binary is newer than its source.

    Args:
        source: the .c file.
        output: the binary.
        libraries: linker flags after the source, e.g. ("-lz", "-lssl", "-lcrypto").
    """
    if output.exists() and output.stat().st_mtime >= source.stat().st_mtime:
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    command = ["gcc", "-O2", "-Wall", "-o", str(output), str(source), *libraries]
    subprocess.run(command, check=True)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Return a self-signed certificate and its key for 127.0.0.1, made with openssl if missing.

    ECDSA P-256, valid 30 days, for localhost and 127.0.0.1: every contender serves wss with
    these two files (the load generator does not verify them).
    """
    certificate, key = directory / "cert.pem", directory / "key.pem"
    fresh = certificate.exists() and time.time() - certificate.stat().st_mtime < 20 * 86400
    if fresh and key.exists():
        return certificate, key
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(certificate), "-days", "30",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


def raise_open_file_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards ``wanted``; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds used so far by process ``pid`` (all its threads)."""
    user, system = cpu_times(pid)
    return user + system


def cpu_times(pid: int) -> tuple[float, float]:
    """Return the user and the system CPU seconds used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields after "(comm)": state is index 0, utime is 11, stime is 12.
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Return the resident set size of process ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_pinned(command: list[str], cpu: int | None, **options: object) -> subprocess.Popen[bytes]:
    """Start ``command`` with its CPU affinity set to ``cpu`` (None: not pinned)."""

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return subprocess.Popen(command, preexec_fn=pin, **options)  # type: ignore[call-overload, no-any-return]


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 3.0) -> None:
    """Terminate ``process`` (this runner's own child), then kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Server:
    """A contender's server process listening on 127.0.0.1:port."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path = field(repr=False)

    def failure(self) -> str:
        """Return the last lines of the server's output, to say why it did not start."""
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-3:]) or f"exit {self.process.returncode}"

    def stop(self) -> None:
        """Stop the server process and delete its log."""
        stop(self.process)
        self.log.unlink(missing_ok=True)


def start_server(name: str, command: list[str], cpu: int | None, timeout: float = 15.0) -> Server:
    """Start a server and wait until its port accepts connections.

    Raises:
        RuntimeError: the server exited or did not listen within ``timeout`` seconds; the
            message holds the tail of its output.
    """
    port = free_port()
    log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    with log.open("wb") as output:
        process = start_pinned([*command, "--port", str(port)], cpu, stdout=output, stderr=output)
    server = Server(name, process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            reason = f"server exited: {server.failure()}"
            server.stop()
            raise RuntimeError(reason)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.05)
    reason = f"server did not listen within {timeout:.0f} s: {server.failure()}"
    server.stop()
    raise RuntimeError(reason)


class LineReader:
    """Read lines from a child's stdout pipe with a deadline (select + os.read)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        """Wrap the stdout pipe of ``process``."""
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.pending = b""

    def readline(self, timeout: float) -> str:
        """Return the next line without its newline; "" at EOF; TimeoutError past timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no output within {timeout:.0f} s")
            readable, _, _ = select.select([self.fd], [], [], remaining)
            if readable:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    line, self.pending = self.pending, b""
                    return line.decode()
                self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode()
