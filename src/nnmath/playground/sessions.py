"""The live sessions of a server, one per browser tab, by a random id.

Beyond ``MAX_SESSIONS`` the least recently used session is stopped (its trainer thread ends), so
that tabs left open or reloaded do not accumulate.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from nnmath.errors import NNMathError
from nnmath.playground.session import Session
from nnmath.playground.trainer import Trainer

MAX_SESSIONS = 16


class EndedError(NNMathError, LookupError):
    """A session id the server does not know (ended, or from before a restart)."""


@dataclass
class Entry:
    """A session and the trainer that plays it."""
    session: Session
    trainer: Trainer


class Sessions:
    """The live sessions by id; beyond ``limit`` the least recently used one is stopped."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: Session) -> str:
        """Keep ``session`` under a new random id and return the id; the least recently used
        sessions beyond the limit are stopped."""
        key = secrets.token_urlsafe(12)
        evicted = []
        with self._lock:
            self._entries[key] = Entry(session, Trainer(session))
            while len(self._entries) > self.limit:
                evicted.append(self._entries.popitem(last=False)[1])
        for old in evicted:
            old.trainer.stop()
        return key

    def get(self, key: str) -> Entry:
        """The entry of ``key``, now the most recently used; EndedError when there is none."""
        with self._lock:
            if key not in self._entries:
                raise EndedError(
                    "this page's session has ended (the server restarted, or many other tabs were "
                    "opened): reload the page"
                )
            self._entries.move_to_end(key)
            return self._entries[key]

    def close(self) -> None:
        """Stop every session's trainer and forget them all."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.trainer.stop()
