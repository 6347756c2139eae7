"""Training in the background: one thread per session steps while the page says "play".

The thread takes the session's lock for a short slice of steps (``SLICE`` seconds), then lets go
for a moment, so that the server's requests (a frame, a click, the mathematics) wait at most one
slice. Pausing, stopping and a diverging step all end the loop within one slice.
"""

from __future__ import annotations

import threading
import time

from nnmath.playground.session import Session

SLICE = 0.008  # seconds of steps per turn of the lock
BREATH = 0.0005  # seconds without the lock between turns


class Trainer:
    """Plays a session: ``play()``, ``pause()``, ``stop()``; ``playing`` says which."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._play = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nnmath-trainer", daemon=True)
        self._thread.start()

    @property
    def playing(self) -> bool:
        """True while the session trains."""
        return self._play.is_set()

    def play(self) -> None:
        """Start training, unless the session has stopped with a message (a divergence)."""
        with self.session.lock:
            if self.session.message is None:
                self.session.stage = None
                self._play.set()

    def pause(self) -> None:
        """Stop training after the current slice of steps; returns once it is over."""
        self._play.clear()
        with self.session.lock:  # returns once the current slice is over
            self.session.version += 1

    def stop(self, timeout: float = 2.0) -> None:
        """End the trainer's thread (waiting at most ``timeout`` seconds)."""
        self._stop.set()
        self._play.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._play.wait(timeout=0.25) or self._stop.is_set():
                continue
            session = self.session
            with session.lock:
                deadline = time.perf_counter() + SLICE
                while self._play.is_set() and time.perf_counter() < deadline:
                    session.step(1)
                    if session.message is not None:
                        self._play.clear()
                        break
            time.sleep(BREATH)
