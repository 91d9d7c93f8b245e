"""The redirector's config.json, generated from federation.yaml (the weights live in one place
only), and checked by the redirector's own loader."""

from __future__ import annotations

from typing import Any

from federation_deploy.config import Federation
from federation_deploy.errors import ConfigError
from federation_deploy.traffic.shares import plain_number


def redirector_config(fed: Federation) -> dict[str, Any]:
    """The redirector's config.json: mybinder.org's `federationRedirect` values, from
    federation.yaml, so weights live in one place only. ConfigError (federation.yaml's file,
    line and key) for a config the redirector's own loader would refuse: validate, `redirector
    config`, render and every publish go through here, so none of them passes what the
    redirector's pods would then refuse at start (crash-looping)."""
    from federation_deploy.redirector.config import RedirectorConfigError, parse_config

    config = _redirector_config(fed)
    try:
        parse_config(config)
    except RedirectorConfigError as exc:
        raise _redirector_refusal(fed, exc) from None
    return config


def _redirector_refusal(fed: Federation, exc: Any) -> ConfigError:
    """The redirector's refusal of a generated key, said at the federation.yaml key behind it."""
    file = fed.path.name
    parts = str(exc.key).split(".")
    if parts[0] == "hosts" and len(parts) > 2:
        member = next((m for m in fed.members.values() if m.host_name == parts[1]), None)
        if member is not None:
            field = {"final_weight": "target_weight"}.get(parts[2], parts[2])
            return ConfigError.single(member.location.file or file, member.location.line,
                                      f"members.{member.name}.{field}",
                                      f"the redirector refuses it: {exc.message}")
    return ConfigError.single(file, None, f"redirector.{exc.key}",
                              f"the redirector refuses it: {exc.message}")


def _redirector_config(fed: Federation) -> dict[str, Any]:
    r = fed.redirector
    hosts: dict[str, Any] = {}
    for m in fed.members.values():
        if not m.routed:
            continue
        host: dict[str, Any] = {
            "url": m.url,
            "weight": plain_number(m.weight),
            "health": m.health_url,
            "versions": m.versions_url,
        }
        if m.prime:
            host["prime"] = True
        if m.ramp is not None and m.drained is None:  # a drained member's ramp is paused
            host["ramp"] = True
            # the weight the ramp ends at: the redirector's sticky ramp gives the member only
            # repositories it keeps at that weight, so completing the ramp moves nobody off it
            host["final_weight"] = plain_number(m.ramp.to_weight)
        hosts[m.host_name] = host
    config: dict[str, Any] = {
        # the weights' generation: a publish compares it (traffic/weights.py), /active_hosts
        # reports it
        "generation": fed.generation,
        "hosts": hosts,
        "check": {
            "period": plain_number(r.check.period),
            "jitter": r.check.jitter,
            "retries": r.check.retries,
            "timeout": plain_number(r.check.timeout),
            "failed_period": plain_number(r.check.failed_period),
        },
        "load_balancer": r.load_balancer,
        "pod_headroom": r.pod_headroom,
        "host_cookie_age_hours": plain_number(r.host_cookie_age_hours),
        "ramp_policy": r.ramp_policy,
        "prime_fallback_after": plain_number(r.prime_fallback_after),
    }
    accepted = fed.rollout.accepted_versions if fed.rollout is not None else None
    if accepted is not None:
        # while ring 1 and 2 of a rollout run, members on either version stay in rotation
        config["accepted_versions"] = accepted
    return config
