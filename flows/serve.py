"""Serve deployments until SIGTERM or Ctrl+C, with a stop that always ends.

Prefect's runner answers SIGTERM by calling its ``stop`` from inside its own event loop, where that
call only creates a coroutine, and then raising ``SystemExit`` wherever the main thread happens to
be. Here either signal cancels the serving task instead, so the runner leaves through its normal
exit (schedules paused, clients closed), and a watchdog ends the process if that exit hangs, as a
service manager expects of a process it stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

from prefect.deployments.runner import RunnerDeployment
from prefect.runner import Runner


class ServingStop:
    """Turns SIGTERM and SIGINT into a cancellation of the serving task, bounded by a grace period.

    Args:
        grace_s: Seconds the runner's exit may take before the process ends without it.
        say: Prints one line to the user.
    """

    def __init__(self, grace_s: float, say: Callable[[str], None]) -> None:
        self.grace_s, self.say = grace_s, say
        self.requested = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.ready: Callable[[], bool] = lambda: True

    def request(self, signum: int, frame: FrameType | None = None) -> None:
        """Signal handler: the first signal stops serving, a second one ends the process at once."""
        if self.requested:
            self.exit_now(f"{signal.Signals(signum).name} again: stopping without waiting")
        self.requested = True
        self.say(f"{signal.Signals(signum).name} received: pausing the schedules and stopping")
        threading.Thread(target=self.watch, name="serving-stop-watchdog", daemon=True).start()
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.cancel_when_ready)

    def cancel_when_ready(self) -> None:
        """Cancels the serving task once the runner has started, so that its exit pauses the schedules."""
        if self.ready():
            self.task.cancel()
        else:  # a runner cancelled while it starts would skip its exit
            self.loop.call_later(0.05, self.cancel_when_ready)

    def watch(self) -> None:
        """Ends the process when the runner's exit outlasts the grace period."""
        threading.Event().wait(self.grace_s)
        self.exit_now(f"Prefect's runner did not stop within {self.grace_s:g} s: stopping without it")

    def exit_now(self, reason: str) -> None:
        """Ends the process with status 1, after the reason and whatever output is pending."""
        self.say(reason)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    async def serve(self, serving: Coroutine[Any, Any, None], ready: Callable[[], bool]) -> None:
        """Awaits ``serving`` (the runner's ``start()``) until a signal cancels it.

        Args:
            serving: The coroutine to run.
            ready: Whether it has started far enough to be cancelled (a signal waits for that).
        """
        self.loop, self.task, self.ready = asyncio.get_running_loop(), asyncio.current_task(), ready
        if self.requested:  # a signal came while the deployments were registered
            self.loop.call_soon(self.cancel_when_ready)
        try:
            await serving
        except asyncio.CancelledError:
            if not self.requested:
                raise


class _StoppableRunner(Runner):
    """A runner whose SIGTERM handler (installed by ``start``) is the serving stop's."""

    def __init__(self, stop: ServingStop, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.serving_stop = stop

    def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
        self.serving_stop.request(signal.SIGTERM)


def serve_until_stopped(
    deployments: list[RunnerDeployment], say: Callable[[str], None], grace_s: float = 20.0
) -> None:
    """Registers the deployments and runs their scheduled flow runs here until SIGTERM or Ctrl+C.

    Args:
        deployments: The deployments to serve, as ``runner_deployments`` builds them.
        say: Prints one line to the user.
        grace_s: Seconds the stop may take before the process ends without finishing it.
    """
    stop = ServingStop(grace_s, say)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    runner = _StoppableRunner(stop, pause_on_shutdown=True)
    for deployment in deployments:
        runner.add_deployment(deployment)
    say(f"Serving {len(deployments)} deployment(s) here; stop with Ctrl+C or SIGTERM.")
    asyncio.run(stop.serve(runner.start(), ready=lambda: runner.started))
    say("Stopped: the schedules are paused until `seqops schedule` serves them again.")
