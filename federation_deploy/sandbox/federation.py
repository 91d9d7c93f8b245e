"""The sandbox: the whole federation on one machine, from moto_server to a measured ramp."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from federation_deploy.config import Federation, load_federation
from federation_deploy.errors import FederationDeployError, ToolError, UsageError
from federation_deploy.health import http
from federation_deploy.progress import Progress
from federation_deploy.runner import Runner
from federation_deploy.sandbox.processes import (
    PortTaken,
    free_port,
    moto_environment,
    process_start,
    recycled,
    stop_process_groups,
    wait_for_http,
)
from federation_deploy.signals import sigterm_as_interrupt
from federation_deploy.traffic.formatting import aligned_lines
from federation_deploy.traffic.shares import shares
from federation_deploy.yamlio import atomic_write_text, load_round_trip, write_round_trip

RAMP_MEMBER = "curvenote"
STATE_FILE = "sandbox.json"
# Routing is per path: the demo's launches are GitHub repositories with Zipf popularity.
ZIPF_EXPONENT = 1.1
REPOSITORIES = 2000


def default_root() -> Path:
    """Where `sandbox up` keeps its state between commands (private to this user)."""
    return Path(tempfile.gettempdir()) / f"federation-deploy-sandbox-{os.getuid()}"


def zipf_launches(count: int, seed: int = 2023) -> list[str]:
    """`count` launch paths over REPOSITORIES repositories with Zipf(1.1) popularity."""
    rng = random.Random(seed)
    weights = [1.0 / math.pow(rank, ZIPF_EXPONENT) for rank in range(1, REPOSITORIES + 1)]
    repos = rng.choices(range(REPOSITORIES), weights=weights, k=count)
    return [f"/build/gh/binder-examples/repo-{r:04d}/HEAD" for r in repos]


def send_launches(redirector_url: str, paths: Sequence[str], members: Mapping[str, str],
                  workers: int = 8) -> Counter[str]:
    """Launch each path through the redirector as a new browser (no cookies); count the
    member each 307 goes to."""
    by_prefix = sorted(((url.rstrip("/"), name) for name, url in members.items()),
                       key=lambda item: len(item[0]), reverse=True)

    stop = threading.Event()

    def run(chunk: Sequence[str]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for path in chunk:  # each its own session: a new browser, no cookies
            if stop.is_set():
                break
            response = http.get(redirector_url + path, 10, allow_redirects=False)
            location = (response.headers or {}).get("Location", "")
            name = next((n for prefix, n in by_prefix if location.startswith(prefix + "/")),
                        f"status {response.status}")
            counts[name] += 1
        return counts

    chunks = [paths[i::workers] for i in range(workers)]
    total: Counter[str] = Counter()
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for counts in pool.map(run, chunks):
            total.update(counts)
    except BaseException:
        # Ctrl-C: the workers stop after their request in flight, instead of sending the rest
        # of the launches first (leaving a `with` block would wait for all of them)
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return total


@dataclass
class Service:
    name: str
    pid: int
    url: str
    log: str
    # processes.process_start(pid) when it was started: `sandbox down` signals the PID only
    # while it still belongs to that process (a recycled PID is someone else's; issue 29)
    started: str | None = None


@dataclass
class SandboxState:
    """What `sandbox up` leaves behind for `sandbox down` (and for people: URLs, env)."""

    root: str
    config_dir: str
    redirector_url: str = ""
    redirector_config: str = ""
    prometheus_url: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)

    def save(self) -> None:
        atomic_write_text(Path(self.root) / STATE_FILE, json.dumps(asdict(self), indent=2) + "\n",
                          mode=0o600)

    @classmethod
    def load(cls, root: Path) -> SandboxState:
        path = root / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(f"no sandbox is up in {root} (run `federation-deploy sandbox up`)")\
                from None
        services = [Service(**s) for s in data.pop("services", [])]
        return cls(**data, services=services)


@dataclass(frozen=True)
class StepMeasure:
    percent: float
    target: dict[str, float]
    measured: dict[str, float]
    launches: int
    seconds: float


@dataclass
class DemoOptions:
    steps: tuple[float, ...] = (1.0, 5.0, 25.0)
    hold: float = 3.0
    launches: int = 4000
    to_weight: float = 40.0
    check_interval: float = 0.5


class Sandbox:
    """Builds the local federation step by step; every process it starts is in `state`, so
    `close()` (also on Ctrl-C or failure) leaves nothing running."""

    def __init__(self, source_config: Path, root: Path, runner: Runner, progress: Progress,
                 redirector_port: int | None = None) -> None:
        self.source_config = source_config
        self.root = root
        self.runner = runner
        self.say = progress
        self.redirector_port = redirector_port
        self.state = SandboxState(root=str(root), config_dir=str(root / "config"))
        self._step = 0

    # -- step bookkeeping ----------------------------------------------------------------------

    @contextmanager
    def step(self, title: str, total: int) -> Iterator[None]:
        self._step += 1
        self.say(f"[{self._step}/{total}] {title} ...")
        start = time.monotonic()
        yield
        self.say(f"[{self._step}/{total}] {title}: done in {time.monotonic() - start:.1f}s")

    @property
    def config_dir(self) -> Path:
        return Path(self.state.config_dir)

    @property
    def redirector_config(self) -> Path:
        return self.root / "redirector" / "config.json"

    def record(self, **settings: str) -> None:
        """Add settings (redirector_url, aws_endpoint) to federation.yaml's `sandbox:` block."""
        data = load_round_trip(self.config_dir / "federation.yaml")
        data["sandbox"].update(settings)
        write_round_trip(self.config_dir / "federation.yaml", data)

    def federation(self) -> Federation:
        return load_federation(self.config_dir)

    # -- 0. a private copy of config/ and terraform/ -------------------------------------------

    def prepare(self) -> None:
        """Copy config/ and terraform/ into the sandbox: the demo rewrites URLs, saves
        terraform outputs and ramp state there, never in the maintainer's checkout."""
        source = load_federation(self.source_config)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        ignore = shutil.ignore_patterns(".terraform", ".fd-work", "*.tfplan", "*.tfstate*")
        shutil.copytree(source.config_dir, self.config_dir, ignore=ignore)
        shutil.rmtree(self.config_dir / "generated", ignore_errors=True)
        tf_copy = self.root / "terraform"
        shutil.copytree(source.terraform_root, tf_copy, ignore=ignore)
        data = load_round_trip(self.config_dir / "federation.yaml")
        data["terraform"]["root"] = "../terraform"
        # short check periods, so health changes show within a second
        data["redirector"]["check"].update({"period": 0.5, "failed_period": 2, "timeout": 1})
        # never the federation's real Prometheus: `sandbox up` names its stand-in instead
        data["redirector"].pop("prometheus_url", None)
        # first of all: this copy is a sandbox, which never reaches a real cluster or cloud
        # (traffic commands and deploy publish to its redirector; no credentials are fetched)
        self.redirector_config.parent.mkdir(parents=True, exist_ok=True)
        data.pop("sandbox", None)
        data.insert(0, "sandbox", {"redirector_config": str(self.redirector_config)})
        data.yaml_set_comment_before_after_key(
            "sandbox",
            before="A local sandbox (federation-deploy sandbox up): weights are published to "
                   "its own redirector,\nits terraform runs against its moto_server, and no "
                   "cloud credential is ever fetched.")
        write_round_trip(self.config_dir / "federation.yaml", data)
        self.state.save()

    # -- 1. AWS emulator and terraform ----------------------------------------------------------

    def spawn(self, name: str, argv: Callable[[int], Sequence[str]], health_path: str,
              env: Mapping[str, str] | None = None, timeout: float = 30.0,
              port: int | None = None) -> Service:
        """Start argv(port) on a free port (or `port`) and wait until it, not another process
        that took the port meanwhile, answers; on a taken port, retry on a fresh one."""
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        for attempt in range(1, 4):
            chosen = port or free_port()
            url = f"http://127.0.0.1:{chosen}"
            process = self.runner.spawn(argv(chosen), log_path=log, env=env)
            service = Service(name=name, pid=process.pid, url=url, log=str(log),
                              started=process_start(process.pid))
            self.state.services.append(service)
            self.state.save()
            try:
                wait_for_http(url + health_path, timeout, process, log)
                return service
            except PortTaken:
                stop_process_groups([process.pid])
                self.state.services.remove(service)
                self.state.save()
                if port is not None or attempt == 3:
                    raise
                self.say(f"    {name}: port {chosen} was taken by another process; "
                         f"retrying on a fresh port")
        raise AssertionError("unreachable")

    def start_moto(self) -> None:
        binary = shutil.which("moto_server", path=f"{Path(sys.executable).parent}:"
                              f"{os.environ.get('PATH', '')}")
        if binary is None:
            raise UsageError("moto_server not found: install the test extras "
                             "(pip install -e '.[test]') or `pip install 'moto[server]'`")
        # AWS-managed IAM policies (AmazonEKSClusterPolicy, ...) exist in moto only when asked
        url = self.spawn("moto", lambda port: [binary, "-H", "127.0.0.1", "-p", str(port)],
                         "/moto-api/data.json",
                         env={"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}).url
        self.state.environment.update(moto_environment(url))
        self.state.save()
        self.record(aws_endpoint=url)

    def provision(self) -> dict[str, Any]:
        """bootstrap, plan, apply of the curvenote stack against moto; outputs saved into the
        sandbox's config/generated/ for render."""
        from federation_deploy.commands import terraform

        fed = self.federation()
        env = dict(self.state.environment)
        result = terraform.bootstrap_member(fed, RAMP_MEMBER, self.runner, env=env)
        self.say(f"    bootstrap: {result.summary}")
        plan = terraform.for_member(fed, RAMP_MEMBER, self.runner, env=env).plan()
        self.say(f"    plan: {plan.summary.line}")
        applied = terraform.apply_member(fed, RAMP_MEMBER, self.runner, env=env)
        outputs = {k: (v.get("value") if isinstance(v, dict) else v)
                   for k, v in applied.outputs.items()}
        self.say(f"    outputs: registry_url={outputs.get('registry_url')}")
        return outputs

    # -- 2. render and dry-run -------------------------------------------------------------------

    def render_all(self) -> list[str]:
        from federation_deploy.values.render import render_member

        fed = self.federation()
        lines = []
        for member in fed.members.values():
            if member.deployable:
                rendered = render_member(fed, member.name)
                lines.append(f"{member.name}: {', '.join(r.release.name for r in rendered)}")
        return lines

    def dry_run(self) -> list[str]:
        """`deploy --dry-run` of the releases whose charts ship offline (federation-redirect):
        real helm template, manifests validated against the Kubernetes schemas."""
        from federation_deploy.commands.deploy import dry_run_member, require_deployable

        fed = self.federation()
        redirector = fed.redirector
        report = dry_run_member(fed, require_deployable(fed, redirector.member), self.runner,
                                releases=[redirector.release])
        lines = report.summary_lines()
        if not report.ok:
            raise FederationDeployError("\n".join(lines))
        return lines

    # -- 3. member stand-ins and the redirector -----------------------------------------------

    def start_members(self) -> dict[str, str]:
        """One stand-in per member (routed or not: a verify of staging must not ask the real
        one); federation.yaml in the sandbox points at them."""
        fed = self.federation()
        urls: dict[str, str] = {}
        for member in fed.members.values():
            def stand_in(port: int, name: str = member.name) -> list[str]:
                return [sys.executable, "-m", "federation_deploy.sandbox.member",
                        "--port", str(port), "--name", name]

            urls[member.name] = self.spawn(f"member-{member.name}", stand_in, "/health").url
        data = load_round_trip(self.config_dir / "federation.yaml")
        for name, url in urls.items():
            node = data["members"][name]
            node["url"] = url
            for key in ("health", "versions"):
                node.pop(key, None)
        write_round_trip(self.config_dir / "federation.yaml", data)
        self.federation()  # still valid
        return urls

    def start_prometheus(self, urls: Mapping[str, str]) -> str:
        """A Prometheus stand-in scraping the member stand-ins, for `ramp --prometheus-url`."""
        url = self.spawn("prometheus",
                         lambda port: [sys.executable, "-m",
                                       "federation_deploy.sandbox.prometheus", "--port",
                                       str(port), "--interval", "2",
                                       *(f"--target={n}={u}/metrics" for n, u in urls.items())],
                         "/-/healthy").url
        self.state.prometheus_url = url
        # the sandbox's federation.yaml names it, so that `ramp` judges on evidence by default
        data = load_round_trip(self.config_dir / "federation.yaml")
        data["redirector"]["prometheus_url"] = url
        write_round_trip(self.config_dir / "federation.yaml", data)
        return url

    def start_redirector(self) -> str:
        from federation_deploy.traffic.publish import publish_file

        fed = self.federation()
        config_path = self.redirector_config
        config_path.parent.mkdir(exist_ok=True)
        publish_file(fed, config_path)
        url = self.spawn("redirector",
                         lambda port: [sys.executable, "-m", "federation_deploy.cli.main",
                                       "redirector", "serve", "--config", str(config_path),
                                       "--port", str(port), "--address", "127.0.0.1"],
                         "/health", port=self.redirector_port).url
        self.state.redirector_url = url
        self.state.redirector_config = str(config_path)
        self.state.save()
        self.record(redirector_url=url)
        self.wait_in_rotation(fed, timeout=30)
        return url

    def wait_in_rotation(self, fed: Federation, timeout: float) -> None:
        """Until every member with weight > 0 passed a health check (is in /active_hosts)."""
        wanted = {m.host_name for m in fed.routed if m.weight > 0}  # its names there
        deadline = time.monotonic() + timeout
        active: set[str] = set()
        while time.monotonic() < deadline:
            try:
                body = json.loads(http.get(self.state.redirector_url + "/active_hosts", 2).text)
                active = set(body.get("active_hosts", {}))
            except (requests.RequestException, ValueError):
                active = set()
            if wanted <= active:
                return
            time.sleep(0.2)
        raise ToolError([self.state.redirector_url + "/active_hosts"], None,
                        summary=f"members not in rotation after {timeout:g}s: "
                                f"{', '.join(sorted(wanted - active))}")

    # -- 4. the ramp -----------------------------------------------------------------------------

    def measure(self, launches: int, seed: int) -> tuple[dict[str, float], float]:
        fed = self.federation()
        members = {m.name: m.url for m in fed.routed}
        start = time.monotonic()
        counts = send_launches(self.state.redirector_url, zipf_launches(launches, seed), members)
        seconds = time.monotonic() - start
        unknown = {k: v for k, v in counts.items() if k not in members}
        if unknown:
            raise ToolError([self.state.redirector_url], None,
                            summary=f"launches not redirected to a member: {unknown}")
        return {name: 100.0 * counts[name] / launches for name in members}, seconds

    def ramp(self, options: DemoOptions) -> list[StepMeasure]:
        """Ramp curvenote through options.steps, publishing to the redirector's file; after
        each step is served, launches measure the real shares."""
        from federation_deploy.commands.ramp import RampSettings, advance_ramp
        from federation_deploy.traffic.publish import PublishTarget, make_publisher
        from federation_deploy.traffic.ramp.plan import resolve_plan

        publisher = make_publisher(PublishTarget("file", Path(self.state.redirector_config)),
                                   self.runner)
        # the demo measures the shares each step gives: its steps pass on health checks alone
        settings = RampSettings(redirector_url=self.state.redirector_url, gate="time",
                                check_interval=options.check_interval, poll_interval=0.2,
                                agreeing_answers=3, settle_timeout=30.0, request_timeout=2.0)
        hold = f"{options.hold:g}s"
        plan = resolve_plan(self.federation(), RAMP_MEMBER, options.steps, options.to_weight,
                            hold)
        planned = ", ".join(f"{p:g}%" for p in plan.percents)
        # the engine announces the whole ramp; say up front which of its steps the demo takes
        self.say(f"    the demo takes the first {len(options.steps)} of the "
                 f"{len(plan.percents)} steps of this ramp ({planned}) and stops at "
                 f"{options.steps[-1]:g}%, where curvenote's share of launches is on target; the "
                 "final step (100%) would hand it back to rendezvous routing")
        measures: list[StepMeasure] = []
        for index, percent in enumerate(options.steps):
            started = time.monotonic()
            fed = self.federation()
            outcome = advance_ramp(fed, RAMP_MEMBER, publisher, steps=options.steps,
                                   to_weight=options.to_weight if index == 0 else None,
                                   hold=hold, settings=settings,
                                   progress=lambda m: self.say(f"    {m}"))
            if outcome.step != index:
                raise FederationDeployError(
                    f"the ramp did not reach step {index + 1}: {outcome.message}")
            fed = self.federation()
            target = shares({m.name: m.weight for m in fed.routed})
            measured, seconds = self.measure(options.launches, seed=index)
            measures.append(StepMeasure(percent, target, measured, options.launches, seconds))
            self.say(f"    step {index + 1}: {RAMP_MEMBER} target {target[RAMP_MEMBER]:.2f}%, "
                     f"measured {measured[RAMP_MEMBER]:.2f}% of {options.launches} launches "
                     f"({options.launches / seconds:.0f} launches/s)")
            if index + 1 < len(options.steps):
                # the ramp only moves on once the step's hold is over
                remaining = options.hold - (time.monotonic() - started)
                if remaining > 0:
                    time.sleep(remaining + 0.2)
        return measures

    def rollout_ring(self, options: DemoOptions) -> None:
        """A chart bump through the rings (sandbox/rings.py), the share measured per step."""
        from federation_deploy.sandbox.rings import demo_ring
        from federation_deploy.traffic.publish import PublishTarget, make_publisher

        demo_ring(self.config_dir, redirector_url=self.state.redirector_url, runner=self.runner,
                  publisher=make_publisher(PublishTarget("file", self.redirector_config)),
                  progress=self.say, check_interval=options.check_interval,
                  measure=lambda: (self.measure(options.launches, seed=7)[0], options.launches))

    # -- shutdown --------------------------------------------------------------------------------

    def close(self, remove: bool = True) -> None:
        if self.state.services:
            self.say(f"stopping {', '.join(s.name for s in self.state.services)} ...")
        stop_services(self.state)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def stop_services(state: SandboxState) -> list[str]:
    """Stop the services' process groups together, except a PID that no longer belongs to
    the service started with it (left alone); says which were left alone, and why."""
    ours = [s for s in reversed(state.services) if not recycled(s.pid, s.started)]
    left = [f"{s.name}: not stopped: PID {s.pid} belongs to another process now (the "
            f"service exited and its PID was given again); left alone" for s in state.services
            if s not in ours]
    stop_process_groups([service.pid for service in ours])
    state.services.clear()
    return left


def final_table(measure: StepMeasure) -> str:
    names = list(measure.target)
    rows = [["member", "target share", "measured share"]]
    rows += [[n, f"{measure.target[n]:.2f}%", f"{measure.measured.get(n, 0.0):.2f}%"]
             for n in names]
    return "\n".join(aligned_lines(rows)) + "\n"


def ramp_summary(policy: str) -> str:
    """The demo's last line: how the ramping member got its share (the configured policy)."""
    from federation_deploy.traffic.ramp.plan import describe_ramp_policy

    return (f"{RAMP_MEMBER} is ramped under {describe_ramp_policy(policy)}. The others keep "
            "plain rendezvous, a share of repositories, which under Zipf popularity is not "
            "exactly their share of launches.")


DEMO_STEPS = 7
UP_STEPS = 4


def _terminate_as_interrupt() -> AbstractContextManager[None]:
    """SIGTERM and SIGHUP (a CI runner, `kill`, a closed terminal) clean up like Ctrl-C."""
    return sigterm_as_interrupt()


def _bring_up(sandbox: Sandbox, total: int, progress: Progress, dry_run: bool) -> None:
    """The steps `demo` and `up` share: copy, provision, render (and dry-run), serve."""
    with sandbox.step("copy config/ and terraform/ into " + str(sandbox.root), total):
        sandbox.prepare()
    with sandbox.step(f"moto_server as AWS; terraform bootstrap, plan, apply of {RAMP_MEMBER}",
                      total):
        sandbox.start_moto()
        sandbox.provision()
    title = "render every member" + ("; deploy --dry-run of the offline charts" if dry_run else "")
    with sandbox.step(title, total):
        for line in sandbox.render_all():
            progress(f"    rendered {line}")
        if dry_run:
            for line in sandbox.dry_run():
                progress(f"    {line}")
    with sandbox.step("member stand-ins and the redirector on 127.0.0.1", total):
        urls = sandbox.start_members()
        for name, url in urls.items():
            progress(f"    {name}: {url}")
        progress(f"    prometheus: {sandbox.start_prometheus(urls)}")
        progress(f"    redirector: {sandbox.start_redirector()}")


def run_demo(source_config: Path, options: DemoOptions, runner: Runner, progress: Progress,
             keep: bool = False) -> list[StepMeasure]:
    """The demo: provision, render, dry-run, serve, ramp and measure; then stop everything and
    remove the sandbox directory (also on failure or Ctrl-C)."""
    root = Path(tempfile.mkdtemp(prefix="federation-deploy-sandbox-"))
    sandbox = Sandbox(source_config, root, runner, progress)
    started = time.monotonic()
    try:
        with _terminate_as_interrupt():
            _bring_up(sandbox, DEMO_STEPS, progress, dry_run=True)
            with sandbox.step(f"ramp {RAMP_MEMBER} through "
                              + " -> ".join(f"{s:g}%" for s in options.steps), DEMO_STEPS):
                measures = sandbox.ramp(options)
            with sandbox.step("roll a binderhub bump through the rings: staging, one member "
                              "at 5%, then all", DEMO_STEPS):
                sandbox.rollout_ring(options)
            with sandbox.step("stop every process, remove the sandbox", DEMO_STEPS):
                sandbox.close(remove=not keep)
    finally:
        sandbox.close(remove=not keep)
    progress(f"demo complete in {time.monotonic() - started:.1f}s")
    return measures


def sandbox_up(source_config: Path, root: Path, runner: Runner, progress: Progress,
               redirector_port: int | None = None) -> SandboxState:
    """Start the sandbox and leave it running for interactive use (`sandbox down` stops it)."""
    if (root / STATE_FILE).exists():
        raise UsageError(f"a sandbox is already up in {root}: `federation-deploy sandbox down` "
                         "first")
    sandbox = Sandbox(source_config, root, runner, progress, redirector_port)
    try:
        with _terminate_as_interrupt():
            _bring_up(sandbox, UP_STEPS, progress, dry_run=False)
    except BaseException:
        sandbox.close(remove=True)
        raise
    return sandbox.state


def sandbox_down(root: Path, progress: Progress | None = None) -> tuple[list[str], list[str]]:
    """Stop every process of the sandbox in root and remove it: the names of what stopped, and
    a sentence for each service left alone (its PID is another process's now)."""
    state = SandboxState.load(root)
    names = [s.name for s in state.services]
    if progress is not None:
        progress(f"stopping {', '.join(names) or 'nothing'} (together; each gets 10 s to go) and "
                 f"removing {root} ...")
    left = stop_services(state)
    shutil.rmtree(root, ignore_errors=True)
    alone = {line.split(":", 1)[0] for line in left}
    return [n for n in names if n not in alone], left
