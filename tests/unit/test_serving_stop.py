"""`seqops schedule`'s stop: SIGTERM or Ctrl+C cancels serving, and a hung exit still ends in time."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A runner stand-in with real signals and a real event loop: "slow-start" takes a second to become
# ready, "stubborn" ignores cancellation as a hung exit would.
SERVER = textwrap.dedent(
    """
    import asyncio, signal, sys
    from flows.serve import ServingStop

    kind, started = sys.argv[1], False

    async def serving() -> None:
        global started
        print("starting", flush=True)
        try:
            await asyncio.sleep(1.0 if kind == "slow-start" else 0)
        except asyncio.CancelledError:
            print("cancelled while starting", flush=True)
            raise
        started = True
        print("serving", flush=True)
        while True:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                if kind != "stubborn":
                    print("runner exited", flush=True)
                    raise

    stop = ServingStop(grace_s=1.5, say=lambda line: print(line, flush=True))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    asyncio.run(stop.serve(serving(), ready=lambda: started))
    print("stopped", flush=True)
    """
)


def start(kind: str, until: str = "serving") -> subprocess.Popen:
    command = [sys.executable, "-c", SERVER, kind]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while (line := server.stdout.readline()) and line.strip() != until:
        pass
    assert line, f"the server ended before printing {until!r}"
    return server


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_serving_so_the_runner_leaves_through_its_own_exit(signum):
    server = start("cooperative")
    server.send_signal(signum)
    output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    received = f"{signal.Signals(signum).name} received: pausing the schedules and stopping"
    assert output.splitlines() == [received, "runner exited", "stopped"]


def test_a_signal_while_the_runner_starts_waits_until_it_can_leave_through_its_exit():
    server = start("slow-start", until="starting")
    server.terminate()
    output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    received = "SIGTERM received: pausing the schedules and stopping"
    assert output.splitlines() == [received, "serving", "runner exited", "stopped"]


def test_an_exit_that_hangs_ends_after_the_grace_period_with_status_1():
    server = start("stubborn")
    stopping = time.perf_counter()
    server.terminate()
    output, _ = server.communicate(timeout=30)
    assert server.returncode == 1, output
    assert time.perf_counter() - stopping >= 1.5
    assert "did not stop within 1.5 s: stopping without it" in output and "stopped\n" not in output


def test_a_second_signal_ends_the_process_at_once():
    server = start("stubborn")
    server.terminate()
    assert "SIGTERM received" in server.stdout.readline()
    server.send_signal(signal.SIGINT)
    output, _ = server.communicate(timeout=30)
    assert server.returncode == 1
    assert "SIGINT again: stopping without waiting" in output and "did not stop within" not in output
