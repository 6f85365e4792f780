"""Stopping a run cleanly: SIGTERM (or a maintenance event) saves the step and exits 143."""

from __future__ import annotations

import contextlib
import signal


class Preempted(Exception):
    """The run was asked to stop (SIGTERM or a maintenance event) and saved its step."""

    exit_code = 143  # 128 + SIGTERM: what schedulers see from a job ended by SIGTERM

    def __init__(self, step: int, directory) -> None:
        super().__init__(f"preempted at step {step}: saved {directory}/{step}; rerun to resume")


class SignalFlag:
    """True once `signum` has arrived; the training loop saves at the next step boundary."""

    def __init__(self, signum: int = signal.SIGTERM, install: bool = True) -> None:
        self.signum, self.seen, self.previous = signum, False, None
        if install:
            # Outside the main thread signals stay with the caller.
            with contextlib.suppress(ValueError):
                self.previous = signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        self.seen = True

    def __bool__(self) -> bool:
        return self.seen

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(self.signum, self.previous)
