"""The git-crypt-locked files a deploy of a member needs, all found before anything is asked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from federation_deploy.config import Federation, Member, values_layers
from federation_deploy.config.gitcrypt import is_git_crypt_locked
from federation_deploy.errors import LockedFilesError


def needed_files(fed: Federation, member: Member, releases: Sequence[str],
                 stages: Sequence[str]) -> list[Path]:
    """The files under the config directory the chosen stages read: the cluster credentials
    (auth), then each chosen release's values files and local CRDs (releases)."""
    files: list[Path] = []
    cluster = member.cluster
    if "auth" in stages:
        if member.cloud == "kubeconfig" and cluster.kubeconfig:
            files.append(fed.secrets_path(cluster.kubeconfig))
        if member.cloud == "gcp" and cluster.key_file:
            files.append(fed.config_dir / cluster.key_file)
    if "releases" in stages:
        chosen = [member.release(r) for r in releases] if releases else list(member.releases)
        for release in chosen:
            files += [layer.path for layer in values_layers(fed, member, release)
                      if layer.missing is None]
            if release.crds and not release.crds.startswith(("https://", "http://")):
                files.append(fed.config_dir / release.crds)
    return list(dict.fromkeys(files))


def require_unlocked(fed: Federation, member: Member, releases: Sequence[str],
                     stages: Sequence[str]) -> None:
    """Raise LockedFilesError naming every locked file the deploy needs, so that one
    `git-crypt unlock` fixes them all, and before the deploy asks for confirmation (a
    confirmed deploy that then stops at the first locked file wastes the question)."""
    locked = [path for path in needed_files(fed, member, releases, stages)
              if is_git_crypt_locked(path)]
    if locked:
        raise LockedFilesError(member.name, [_shown(fed, path) for path in locked])


def _shown(fed: Federation, path: Path) -> str:
    base = fed.config_dir.resolve()
    resolved = path.resolve()
    return resolved.relative_to(base).as_posix() if resolved.is_relative_to(base) else str(path)
