"""The ramp engine's hold on federation.yaml and the published weights (one writer): stop when
someone else changed them (abort wins), publish as a compare-and-swap (a refused publish puts
the write back), and publish what the file says when interrupted between a write and its
publish. A mixin of RampEngine (engine.py), split from it by job."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from federation_deploy.config import Federation, load_federation
from federation_deploy.errors import FederationDeployError, PublishFailed, WeightsConflict
from federation_deploy.progress import Progress
from federation_deploy.traffic.ramp.state import write_member
from federation_deploy.traffic.ramp.watch import RampIO, RampSettings
from federation_deploy.traffic.weights import (
    ConfigSnapshot,
    changed_since,
    check_publish,
    restore,
    weight_differences,
    weights_of,
)

# the note an interrupt carries when federation.yaml holds weights that are not published
NOT_PUBLISHED = "federation.yaml holds weights not yet published"


class ConfigKeeper:
    """What RampEngine does to keep federation.yaml and the published weights one truth."""

    config: ConfigSnapshot
    member: str
    settings: RampSettings
    io: RampIO
    say: Progress
    dirty: bool  # config written, publish not done yet
    before_write: ConfigSnapshot | None  # put back if the publish is refused

    @property
    def fed(self) -> Federation:
        return self.config.fed

    def _ensure_current(self) -> None:
        """Stop (WeightsConflict) when federation.yaml no longer holds what this engine last
        read or wrote, or the redirector serves a newer generation: someone else changed the
        weights (an abort, a hand edit, another ramp, another machine). Nothing is written,
        published or rolled back: their change stands."""
        change = changed_since(self.config)
        if change is not None:
            raise WeightsConflict(self._stopped(change))
        if self.settings.redirector_url:
            live = self.io.live_generation(self.settings.redirector_url,
                                           self.settings.request_timeout)
            if live is not None and live > self.fed.generation:
                raise WeightsConflict(
                    f"the ramp of {self.member} stops without rolling back or publishing: the "
                    f"redirector serves generation {live} of the weights, newer than generation "
                    f"{self.fed.generation} in {self.fed.path} (another process or machine "
                    "changed them). federation.yaml here is older than what is served: update "
                    "it (git pull) and run again")

    def _stopped(self, change: str) -> str:
        m = self.member
        if f"{m} drained (" in change:
            return (f"the ramp of {m} is paused: {m} was drained; the ramp stops without "
                    f"rolling back or publishing, its `ramp:` block kept: {change}. When the "
                    f"member is fixed, `federation-deploy traffic restore {m}` resumes it at "
                    "its step")
        if f"{m} ramp removed" in change:
            return (f"the ramp of {m} was aborted; it stops without rolling back or publishing "
                    f"and leaves that change as it is: {change}. To ramp {m} again, start a new "
                    f"ramp: `federation-deploy ramp {m}`")
        return (f"federation.yaml changed under the ramp of {m}; it stops without rolling back "
                f"or publishing and leaves that change as it is: {change}. To go on, run the "
                "ramp again: it resumes from federation.yaml as it is now")

    def _publish(self, holds: str) -> None:
        """Publish the config's weights (a compare-and-swap in the publisher). When refused,
        the write that preceded it is put back, so the loser leaves no trace. When the target
        fails (after Publisher.check passed), federation.yaml keeps `holds` and the error
        says so (exit 1): a rerun publishes it."""
        try:
            self.io.publish(self.fed)
        except WeightsConflict as exc:
            self.dirty = False
            message = str(exc)
            if self.before_write is not None and restore(self.config, self.before_write):
                self.config = self.before_write
                message += (f"; federation.yaml put back to generation "
                            f"{self.before_write.fed.generation}")
            raise WeightsConflict(message) from None
        except (FederationDeployError, OSError) as exc:
            self.dirty = False
            shown = exc.render() if isinstance(exc, FederationDeployError) else str(exc)
            raise PublishFailed(
                f"publishing failed: {shown}\n{self.fed.path} holds {holds} (generation "
                f"{self.fed.generation}), not yet published: rerun with a working --publish"
            ) from None
        self.dirty = False

    def _publish_needed(self) -> str | None:
        """Why the published weights are not the config's (None when they are)."""
        if self.io.published is None:
            return "resuming (the publish target cannot be read back)"
        current = self.io.published(self.fed)
        if current is None:
            return "nothing is published there yet"
        check_publish(self.fed, current, "the publish target")  # a newer one stops us here
        differences = weight_differences(weights_of(self.fed), current)
        if current.generation != self.fed.generation or differences:
            shown = "; ".join(differences) or "the same weights"
            return (f"the published weights are generation {current.generation} ({shown}), "
                    f"not the config's")
        return None

    def _republish_zero_block(self) -> bool:
        """A `ramp:` block at 0 written without a new generation (by a version before the
        pre-flight's write was a published one): the target serves the same generation with
        this member's weight 0 but no ramp flag, which check_publish refuses as two writers'
        work, so such a ramp could never resume. Write the block again (as it is: markers and
        evidence kept) with one more generation, and publish it. False: not that case."""
        state = self.fed.members[self.member].ramp
        if self.io.published is None or state is None or state.step >= 0:
            return False
        current = self.io.published(self.fed)
        ours = weights_of(self.fed)
        m = self.member
        if (current is None or current.generation != self.fed.generation
                or ours.weights.get(m, 0.0) != 0 or current.weights.get(m, 0.0) != 0
                or m not in ours.ramping or m in current.ramping
                or any(not d.startswith(f"{m}: ") for d in weight_differences(ours, current))):
            return False
        self.say(f"the `ramp:` block of {m} at 0 was written without a new generation (by an "
                 f"earlier version) and never published: writing it again as generation "
                 f"{self.fed.generation + 1} and publishing it")
        self.dirty = True
        self.before_write = self.config
        try:
            self.config = write_member(self.config, m, 0.0, state)
        except WeightsConflict as exc:
            self.dirty = False
            raise WeightsConflict(self._stopped(str(exc))) from None
        self._publish(f"the ramp of {m} before its first step")
        return True

    @contextlib.contextmanager
    def _consistent_on_interrupt(self) -> Iterator[None]:
        """On Ctrl-C or SIGTERM between a config write and its publish, publish what the file
        says, so that config and the published weights agree when the process exits."""
        try:
            yield
        except KeyboardInterrupt as interrupt:
            if self.dirty:
                self.say(f"interrupted: publishing the weights {self.fed.path} has now")
                try:
                    self.io.publish(load_federation(self.fed.config_dir))
                except (FederationDeployError, OSError) as exc:
                    self.say(f"not published: {exc}")
                    # what the interrupted ramp then says (commands.ramp.interrupted)
                    interrupt.add_note(NOT_PUBLISHED)
                self.dirty = False
            raise
