"""run_workers(): serve one port from N chat processes (``framewire chat --workers N --redis``).

The parent starts N children with multiprocessing's "spawn" method; each runs
:func:`framewire.chat.run.run_chat` with ``workers=1, reuse_port=True``, so every child binds
its own listening socket to the same port with SO_REUSEPORT and the kernel spreads new
connections over them. The room is shared through Redis, so it does not matter which child a
client lands on. With ``--port 0`` the parent picks the port first and holds it (bound, not
listening) so that every child gets the same one.

The parent serves nothing itself; it only watches:

- SIGTERM or SIGINT: each child gets SIGTERM (it closes its clients with 1001 and exits);
  one still running after STOP_TIMEOUT seconds gets SIGKILL. run_workers() then returns 0.
- A child that exits on its own is reported on stderr and restarted after a back-off of
  1 s doubling to 30 s (reset once a child has run RESTART_RESET seconds). When
  CRASH_LOOP_LIMIT children in a row each die within STARTUP_GRACE seconds of starting (a
  port in use, a bad URL), the parent stops the rest and returns 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from framewire.chat.config import ChatConfig

__all__ = ["run_workers"]

STOP_TIMEOUT = 10.0  # seconds a child may take to stop after SIGTERM
RESTART_FIRST = 1.0  # seconds before the first restart of a child that died
RESTART_CAP = 30.0  # longest wait before a restart
RESTART_RESET = 60.0  # a child that ran this long resets the back-off
STARTUP_GRACE = 5.0  # a child dying sooner than this after starting counts toward a crash loop
CRASH_LOOP_LIMIT = 5


def _serve_worker(config: ChatConfig) -> None:
    """The child's entry point: one chat server process on the shared port."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from framewire.chat.run import run_chat

    with contextlib.suppress(KeyboardInterrupt):  # SIGINT before run_chat handles it
        asyncio.run(run_chat(config))


@dataclass
class _Slot:
    """One worker position: its current process, or when it is due to be restarted."""

    number: int
    process: BaseProcess | None = None
    started: float = 0.0
    restart_at: float | None = None
    delay: float = 1.0  # seconds before the next restart


def _reserve_port(host: str) -> socket.socket:
    """Bind (without listening) a SO_REUSEPORT socket to a free port of ``host``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock


def _report(text: str) -> None:
    print(f"framewire chat workers: {text}", file=sys.stderr, flush=True)


def run_workers(config: ChatConfig) -> int:
    """Serve ``config`` from ``config.workers`` processes on one port until SIGTERM/SIGINT.

    Must be called from the main thread (it installs signal handlers).

    Returns:
        0 after a stop by signal, 1 when the children kept dying at start.
    """
    reserved = _reserve_port(config.host) if config.port == 0 else None
    port = reserved.getsockname()[1] if reserved is not None else config.port
    child_config = dataclasses.replace(config, workers=1, reuse_port=True, port=port)
    context = multiprocessing.get_context("spawn")
    slots = [_Slot(number, delay=RESTART_FIRST) for number in range(1, config.workers + 1)]

    wake_reader, wake_writer = socket.socketpair()
    wake_reader.setblocking(False)
    wake_writer.setblocking(False)
    stop_requested = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous_handlers = {
        signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    previous_wakeup = signal.set_wakeup_fd(wake_writer.fileno())

    def start(slot: _Slot) -> None:
        process = context.Process(
            target=_serve_worker,
            args=(child_config,),
            name=f"framewire-chat-worker-{slot.number}",
        )
        process.start()
        slot.process, slot.started, slot.restart_at = process, time.monotonic(), None
        _report(f"worker {slot.number} started (pid {process.pid}) on port {port}")

    quick_deaths = 0
    status = 0
    try:
        for slot in slots:
            start(slot)
        while not stop_requested:
            now = time.monotonic()
            due = [slot.restart_at for slot in slots if slot.restart_at is not None]
            timeout = max(0.0, min(due) - now) if due else None
            watched: list[object] = [wake_reader]
            watched += [slot.process.sentinel for slot in slots if slot.process is not None]
            wait(watched, timeout)  # type: ignore[arg-type]
            with contextlib.suppress(BlockingIOError):
                while wake_reader.recv(512):
                    pass
            if stop_requested:
                break
            now = time.monotonic()
            for slot in slots:
                process = slot.process
                if process is not None and not process.is_alive():
                    process.join()
                    ran = now - slot.started
                    quick_deaths = quick_deaths + 1 if ran < STARTUP_GRACE else 0
                    if ran >= RESTART_RESET:
                        slot.delay = RESTART_FIRST
                    slot.process, slot.restart_at = None, now + slot.delay
                    _report(
                        f"worker {slot.number} (pid {process.pid}) exited with code "
                        f"{process.exitcode} after {ran:.1f} s; restarting in {slot.delay:g} s"
                    )
                    slot.delay = min(RESTART_CAP, slot.delay * 2)
                elif slot.restart_at is not None and slot.restart_at <= now:
                    start(slot)
            if quick_deaths >= CRASH_LOOP_LIMIT:
                _report(f"{quick_deaths} workers in a row died at start; giving up")
                status = 1
                break
    finally:
        _stop_all([slot.process for slot in slots if slot.process is not None])
        signal.set_wakeup_fd(previous_wakeup)
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
        wake_reader.close()
        wake_writer.close()
        if reserved is not None:
            reserved.close()
    return status


def _stop_all(processes: list[BaseProcess]) -> None:
    """SIGTERM every child, SIGKILL those still running after STOP_TIMEOUT, reap all."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            _report(f"pid {process.pid} did not stop within {STOP_TIMEOUT:g} s; killing it")
            process.kill()
            process.join()
