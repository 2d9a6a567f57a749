"""The progress bar while a sweep runs and the summary when it ends."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from .worker import Outcome


class Progress:
    """A ``tqdm`` bar: scenarios done, failed, rate and ETA (a no-op when switched off)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar: Any = None
        self.failed = 0
        if enabled and total:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            self._bar = tqdm(
                total=total, unit="scenario", desc="sweep", file=sys.stderr, dynamic_ncols=True
            )
            self._bar.set_postfix(failed=0, refresh=False)

    def update(self, outcome: Outcome) -> None:
        """Count one finished scenario."""
        if outcome.status == "FAILED":
            self.failed += 1
        if self._bar is not None:
            self._bar.set_postfix(failed=self.failed, refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        """Remove the bar's resources (the last state stays on screen)."""
        if self._bar is not None:
            self._bar.close()


@dataclass
class SweepReport:
    """What a sweep did."""

    experiment: str
    tracking_uri: str
    """The store, without credentials."""
    planned: int = 0
    """Scenarios that were to run."""
    skipped: int = 0
    """Scenarios already FINISHED in the store."""
    failed_kept: int = 0
    """Scenarios with only FAILED/KILLED runs, not retried (no ``retry_failed``)."""
    repeated: int = 0
    """Grid combinations repeating an earlier one."""
    running_elsewhere: int = 0
    """Scenarios left to other sweeps running on this machine, which claimed them first."""
    elsewhere_pids: list[int] = field(default_factory=list)
    """The process ids of those sweeps."""
    superseded: int = 0
    """Earlier attempts whose scenario key moved aside."""
    synced: int = 0
    """Runs replayed from this machine's spool before planning."""
    unsynced: int = 0
    """Runs of the spool that could not be replayed (still there)."""
    outcomes: list[Outcome] = field(default_factory=list)
    wall_seconds: float = 0.0
    workers: int = 1
    """Workers the scenarios ran on."""
    delivery_seconds: float = 0.0
    """Waiting, after the last scenario, for the last runs to reach the store."""
    driver_cpu_seconds: float = 0.0
    """CPU time the driver spent delivering runs while the scenarios ran (workers on this
    machine only write the spool; the driver writes their runs to the store)."""
    cores: int = 0
    """CPU cores this process may use (0: unknown), to judge whether the driver's delivery
    took CPU from the workers."""
    kept: int = 0
    """Finished runs the store did not take: they wait in the spool for `emstrack sync`."""
    untidy: str | None = None
    """Why the closing tidy-up (superseding extra attempts) could not reach the store."""
    dry_run: bool = False
    lines: list[str] = field(default_factory=list)
    """With ``dry_run``: one line per scenario."""

    @property
    def finished(self) -> int:
        """Scenarios run to FINISHED by this sweep."""
        return sum(outcome.status == "FINISHED" for outcome in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        """Scenarios of this sweep that raised or lost their worker."""
        return [outcome for outcome in self.outcomes if outcome.status == "FAILED"]

    @property
    def found_finished(self) -> int:
        """Scenarios a worker found FINISHED in the store when it got them (not run again)."""
        return sum(outcome.status == "SKIPPED" for outcome in self.outcomes)

    @property
    def worker_seconds(self) -> float:
        """Time the workers spent in scenarios."""
        return sum(outcome.seconds for outcome in self.outcomes)

    @property
    def tracking_seconds(self) -> float:
        """Time tracking added to the scenarios (the tracked call minus the function)."""
        return sum(outcome.tracking_seconds for outcome in self.outcomes)

    @property
    def driver_shares_cores(self) -> bool:
        """Whether the workers filled every core, so that the driver's delivery took their CPU."""
        return self.cores > 0 and self.workers >= self.cores

    @property
    def tracking_share(self) -> float:
        """Tracking's share of the wall time.

        Its time in the scenarios, spread over the workers; the driver's delivery CPU, spread
        over the cores, when the workers filled them all (else it ran on a spare core, beside
        them); and the wait for the last runs' delivery at the end.
        """
        if not self.wall_seconds:
            return 0.0
        spent = self.tracking_seconds / max(1, self.workers) + self.delivery_seconds
        if self.driver_shares_cores:
            spent += self.driver_cpu_seconds / self.cores
        return min(1.0, spent / self.wall_seconds)

    @property
    def startup_seconds(self) -> float:
        """Time the workers spent importing before their first scenario."""
        return sum(outcome.startup_seconds for outcome in self.outcomes)

    @property
    def rate(self) -> float:
        """Scenarios per second of wall time."""
        return len(self.outcomes) / self.wall_seconds if self.wall_seconds else 0.0

    def summary(self) -> str:
        """The closing lines."""
        if self.dry_run:
            return (
                f"dry run: {self.planned} to run, {self.skipped} finished, "
                f"{self.failed_kept} failed not retried (--retry-failed)"
                f"{self._elsewhere_text()}"
            )
        text = (
            f"{len(self.outcomes) - self.found_finished} run ({self.finished} finished, "
            f"{len(self.failed)} failed), "
            f"{self.skipped} skipped (finished before), {self.failed_kept} failed before and "
            f"not retried{self._elsewhere_text()}; wall time {self.wall_seconds:.1f} s, "
            f"{self.rate:.2f} scenarios/s, "
            f"tracking {100 * self.tracking_share:.1f} % of it ({self.tracking_seconds:.2f} s "
            f"in scenarios on {self.workers} worker(s), {self._driver_text()}"
            f"{self.delivery_seconds:.2f} s delivering the last runs); "
            f"worker start-up {self.startup_seconds:.1f} s"
        )
        if self.kept:
            text += (
                f"; {self.kept} finished run(s) wait in the spool (the store did not take "
                "them): `emstrack sync` delivers them"
            )
        if self.untidy:
            text += f"; not tidied up ({self.untidy}): the next sweep does it"
        if self.synced or self.unsynced:
            text += f"; {self.synced} run(s) synced from the spool first"
            if self.unsynced:
                text += f", {self.unsynced} could not be (see `emstrack status`)"
        if self.found_finished:
            text += f"; {self.found_finished} found finished by their worker"
        problems = [f"failed  {o.key}  {o.error}" for o in self.failed]
        return "\n".join([*problems, text])

    def _elsewhere_text(self) -> str:
        if not self.running_elsewhere:
            return ""
        pids = ", ".join(map(str, self.elsewhere_pids))
        return (
            f", {self.running_elsewhere} left to another sweep running on this machine "
            f"(pid{'s' if len(self.elsewhere_pids) > 1 else ''} {pids})"
        )

    def _driver_text(self) -> str:
        if not self.driver_cpu_seconds:
            return ""
        where = (
            f"sharing the workers' {self.cores} core(s)"
            if self.driver_shares_cores
            else "on a spare core, not counted"
        )
        return f"{self.driver_cpu_seconds:.2f} s of the driver's CPU delivering ({where}), "
