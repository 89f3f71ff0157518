"""Each of the champion gate's two locks, alone, keeps a second run out while one run is at the gate.

- The Prefect global concurrency slot serialises runs that share a Prefect server (with an MLflow
  server, where there is no registry file to lock).
- The file lock beside a SQLite registry serialises runs in embedded mode, each with its own temporary
  Prefect server (so each has a slot of its own): here this process and a second one.

The first run is held inside the gate by an event (a line on its stdin for a process) until the test
has seen the second one kept out.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import mlflow
import pytest
from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from prefect.exceptions import ObjectNotFound

import flows.champion
from flows.champion import PromotionLock, ensure_concurrency_limit, promote_best
from tasks import get_task

MODEL = "seqops-sentiment"
ROW = {"cell": "lstm", "version": "1", "test_macro_f1": 0.5}
ROOT = Path(__file__).resolve().parents[2]


def test_a_slot_another_run_creates_between_our_read_and_our_create_is_shared(prefect_harness, monkeypatch):
    name = "race-promotion"
    ensure_concurrency_limit(name)  # the other run's, created first

    def read_just_before_it_existed(client, limit_name):
        raise ObjectNotFound(http_exc=Exception(f"no limit {limit_name} yet"))

    monkeypatch.setattr(
        SyncPrefectClient, "read_global_concurrency_limit_by_name", read_just_before_it_existed
    )
    ensure_concurrency_limit(name)  # creating it again says it exists: that is the slot to share
    monkeypatch.undo()
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(name).limit == 1


@pytest.fixture
def tracking_server():
    """MLflow pointed at a tracking server (never contacted here): no registry file, so no file lock."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri("http://127.0.0.1:5000")
    yield
    mlflow.set_tracking_uri(previous)


def test_the_prefect_slot_keeps_a_second_run_out_while_one_is_at_the_gate(
    prefect_harness, tracking_server, monkeypatch
):
    inside, leave = threading.Event(), threading.Event()

    def held(*args) -> dict:  # the first run, deciding: it stays at the gate until told to leave
        inside.set()
        leave.wait(60)
        return {"promoted": False, "reason": "held by the test"}

    monkeypatch.setattr(flows.champion, "decide", held)
    first = threading.Thread(target=promote_best.fn, args=(get_task("sentiment"), [ROW], ["model"], "data"))
    first.start()
    try:
        assert inside.wait(60), "the first run never reached the gate"
        with pytest.raises(TimeoutError), PromotionLock(MODEL, timeout_seconds=1):
            pytest.fail("a second run got into the gate while the first was deciding")
    finally:
        leave.set()
        first.join(60)
    with PromotionLock(MODEL, timeout_seconds=30):
        pass  # once the first run has left, the second one gets its turn


# One pipeline run in embedded mode: its own PREFECT_HOME and Prefect server, the shared SQLite registry.
# It says where it is on stdout ("gate: <where>") and moves on when the test writes a line on its stdin.
RUN = """
import sys
import flows.champion
from flows.champion import PromotionLock, promote_best
from tasks import get_task

def say(where):
    print("gate:", where, flush=True)

def held(*args):
    say("inside")
    sys.stdin.readline()
    say("leaving")
    return {"promoted": False, "reason": "held by the test"}

with PromotionLock("seqops-sentiment"):  # starts this run's own Prefect server, as a first run would
    pass
say("ready")
sys.stdin.readline()
flows.champion.decide = held
say("entering")
promote_best.fn(get_task("sentiment"), [{"version": "1", "test_macro_f1": 0.5}], ["model"], "data")
say("left")
"""


class Run:
    """A pipeline run in a process of its own, with what it has said so far."""

    def __init__(self, folder: Path, database: Path) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "MLFLOW_"))}
        if env.get("MUTANT_UNDER_TEST") == "stats":  # mutmut's tracing run: only its own process reports
            del env["MUTANT_UNDER_TEST"]
        env |= {
            "PREFECT_HOME": str(folder / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # two servers start at once on 2 cores
            "MLFLOW_TRACKING_URI": f"sqlite:///{database}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        }
        folder.mkdir()
        self.errors = folder / "stderr.txt"
        with self.errors.open("w") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-c", RUN],
                cwd=folder,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                start_new_session=True,  # its Prefect server too can be stopped, by this group's id
            )
        self.said: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        for line in self.process.stdout:
            if line.startswith("gate: "):
                self.said.put(line.removeprefix("gate: ").strip())

    def expect(self, where: str, timeout: float = 180) -> None:
        deadline, said = time.monotonic() + timeout, None
        while said is None:
            ended = self.process.poll() is not None  # then it has said all it will: stop waiting
            with suppress(queue.Empty):
                said = self.said.get(timeout=5 if ended else 0.2)
            if ended or time.monotonic() > deadline:
                break
        assert said == where, f"the run said {said!r}, not {where!r}; its stderr:\n{self.errors.read_text()}"

    def go(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def end(self) -> None:
        """Let the run finish (an empty stdin lets it through every step), or stop it and its server."""
        with suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kept_out(self, lock: Path, timeout: float = 120) -> None:
        """Return once the run is seen blocked on ``lock``; fail if it says it got further meanwhile."""
        deadline = time.monotonic() + timeout
        while not waits_on(lock, self.process.pid):
            with suppress(queue.Empty):
                pytest.fail(f"the run got to {self.said.get(timeout=0.05)!r} while another was inside")
            assert time.monotonic() < deadline, f"neither waiting nor in:\n{self.errors.read_text()}"


def waits_on(lock: Path, pid: int) -> bool:
    """Whether process ``pid`` is blocked on an exclusive ``flock`` of ``lock`` (Linux's /proc/locks)."""
    if not lock.exists():
        return False
    inode = str(lock.stat().st_ino)
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()  # "3: -> FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF"
        if fields[1:3] == ["->", "FLOCK"] and fields[5] == str(pid) and fields[6].split(":")[-1] == inode:
            return True
    return False


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks to see a run wait")
def test_the_registry_file_lock_keeps_a_second_embedded_run_out_while_one_is_at_the_gate(
    prefect_harness, tmp_path, monkeypatch
):
    # The first run is this process, at the session's Prefect server; the second has a server (so a
    # slot) of its own: only the lock file beside their shared SQLite registry can keep them apart.
    database = tmp_path / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{database}")  # the autouse state fixture restores it
    inside, leave = threading.Event(), threading.Event()

    def held(*args) -> dict:
        inside.set()
        leave.wait(120)
        return {"promoted": False, "reason": "held by the test"}

    monkeypatch.setattr(flows.champion, "decide", held)
    second = Run(tmp_path / "second", database)
    first = threading.Thread(target=promote_best.fn, args=(get_task("sentiment"), [ROW], ["model"], "data"))
    try:
        second.expect("ready")
        first.start()
        assert inside.wait(60), "the first run never reached the gate"
        second.go()
        second.expect("entering")
        second.kept_out(tmp_path / "mlflow.db.seqops-sentiment-promotion.lock")
        leave.set()
        first.join(60)
        second.expect("inside")
        second.go()
        second.expect("leaving")
        second.expect("left")
        assert second.process.wait(60) == 0, second.errors.read_text()
        assert "Traceback" not in second.errors.read_text()  # and the gate leaves no error in the logs
    finally:
        leave.set()
        if first.ident is not None:
            first.join(60)
        second.end()
