"""The tracker's durable queue: what the driver asks to log waits in a JSONL file in the sweep folder until a
background thread has logged it, in order, so the sweep never waits for the store and a killed driver loses
nothing (the file is read again when the sweep resumes).

An item is a dict with "op": "sweep" (start), "trial" (with "trial": {"number": ...}) or "finish"; a newer item
with the same key replaces the queued one. `apply(item)` logs one item. When it raises, the item stays: a
transient failure (server down, timeout, locked database) ends this round and the item is retried on the next
call; an item the store refuses is set aside for this session, said once, and the rest goes on.

`env` (the environment variables the logging calls need) is set by the calling thread before the logging
thread starts and restored after that thread is joined: the logging thread never changes os.environ.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Callable

from pai_sweep.spawn import DRIVER_ONLY_ENV
from pai_sweep.trial_files import atomic_write_text

BACKLOG = "tracking_backlog.jsonl"


class Backlog:
    def __init__(self, path: Path, apply: Callable[[dict], None], say: Callable[[str], None],
                 where: Callable[[], str], env: dict[str, str] | None = None):
        self.path = Path(path)
        self.items: list[dict] = read_backlog(self.path)
        self._apply = apply
        self._say = say
        self._where = where  # the store, as the lines name it
        self._env = dict(env or {})
        self._saved_env: dict[str, str | None] | None = None
        self._failing = False
        self._told: list[str] = []  # what close() last said was not logged
        self._refused: set[str] = set()  # items the store refused (said once each)
        self._lock = threading.Lock()  # guards items (the driver's thread adds, the logging thread removes)
        self._cv = threading.Condition()
        self._requested = self._served = 0  # kicks asked for / kicks the logging thread has worked through
        self._stopping = False
        self._thread: threading.Thread | None = None

    def submit(self, item: dict) -> None:
        """Queue `item` (on disk before it is tried) and wake the logging thread."""
        key = item_key(item)
        with self._lock:
            self.items = [i for i in self.items if item_key(i) != key] + [item]
            self._save()  # a driver killed now loses nothing
        self.kick()

    def kick(self) -> None:
        """Ask the logging thread for one more pass over the queue (starting it, and its environment, if needed)."""
        with self._cv:
            self._requested += 1
            self._stopping = False
            if self._thread is None or not self._thread.is_alive():
                self._set_env()
                self._thread = threading.Thread(target=self._work, name="pai-sweep-tracking", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far was tried once (logged, or kept after a failure)."""
        with self._cv:
            target = self._requested
            return self._cv.wait_for(lambda: self._served >= target, timeout)

    def close(self) -> None:
        """One more try, wait for it, stop the thread; say in one line what is still not logged."""
        self.kick()
        self.flush()
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._restore_env()
        pending = self.pending()
        if pending and self._told != pending:
            self._told = pending
            self._say(f"{len(pending)} item(s) not logged to {self._where()} "
                      f"({', '.join(pending)}); they wait in {self.path} and are logged when the sweep resumes")

    def pending(self) -> list[str]:
        """What is queued and not logged yet, e.g. ["trial 3", "sweep end"]."""
        with self._lock:
            return [describe(item) for item in self.items]

    # -- the logging thread

    def _work(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._served < self._requested or self._stopping)
                if self._served >= self._requested:
                    return  # stopping, nothing left to try
                target = self._requested
            try:
                self._drain()
            except Exception as exc:  # a bug here must not kill the thread silently
                self._say(f"tracking stopped logging: {type(exc).__name__}: {first_line(exc)}")
            with self._cv:
                self._served = target
                self._cv.notify_all()

    def _drain(self) -> None:
        done = 0
        refused: list[dict] = []
        while True:
            with self._lock:
                item = next((i for i in self.items if not any(i is r for r in refused)), None)
            if item is None:
                break
            try:
                self._apply(item)
            except Exception as exc:  # any store failure: keep the item, the sweep goes on
                if transient(exc):
                    if not self._failing:
                        self._say(f"{describe(item)} not logged to {self._where()} "
                                  f"({type(exc).__name__}: {first_line(exc)}); queued in {self.path}, retried on the next call")
                    self._failing = True
                    return
                # The store refused this item itself: keep it for a later look, do not block the rest.
                if item_key(item) not in self._refused:
                    self._refused.add(item_key(item))
                    self._say(f"{describe(item)} refused by {self._where()} ({first_line(exc)}); kept in {self.path}")
                refused.append(item)
                continue
            with self._lock:
                self.items = [i for i in self.items if i is not item]
                self._save()
            done += 1
        if done and self._failing:
            self._say("caught up: the store answers again, queued items logged")
        self._failing = False

    def _save(self) -> None:
        if not self.items:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, "".join(json.dumps(i) + "\n" for i in self.items))

    # -- the environment of the logging thread (set and restored by the caller's thread)

    def _set_env(self) -> None:
        if self._saved_env is None and self._env:
            self._saved_env = {k: os.environ.get(k) for k in (*self._env, DRIVER_ONLY_ENV)}
            os.environ.update(self._env)
            os.environ[DRIVER_ONLY_ENV] = ",".join(self._env)  # the sweep's workers do not inherit them (spawn.py)

    def _restore_env(self) -> None:
        if self._saved_env is None:
            return
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = None


def item_key(item: dict) -> str:
    return f"trial:{item['trial']['number']}" if item["op"] == "trial" else item["op"]


def describe(item: dict) -> str:
    return {"sweep": "sweep start", "finish": "sweep end"}.get(item["op"]) or f"trial {item['trial']['number']}"


def transient(exc: BaseException) -> bool:
    """Server down, timeout, locked database: worth retrying. A refused value is not."""
    code = getattr(exc, "error_code", None)
    return code not in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST", "INVALID_STATE")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:200]


def read_backlog(path: Path) -> list[dict]:
    items = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                items.append(json.loads(line))
            except ValueError:
                continue  # a torn last line: that item was not saved
    return items
