"""The lock files pin what pyproject.toml asks for, with hashes, and are what this environment
was installed from (`make` installs requirements-dev.lock; the image, requirements.lock)."""

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {canonicalize_name(name): version for name, version in _PIN.findall(text)}


def hashed(lock: str) -> set[str]:
    """The pinned packages whose entry carries at least one hash."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text())
    return {
        canonicalize_name(match[1])
        for entry in entries
        if (match := _PIN.match(entry)) and "--hash=sha256:" in entry
    }


LOCKS = {
    "requirements.lock": PROJECT["dependencies"],
    "requirements-dev.lock": PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"],
}


@pytest.mark.parametrize(("lock", "requirements"), LOCKS.items())
def test_every_requirement_is_pinned_within_its_range(lock, requirements):
    pinned = pins(lock)
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock} lacks {name}: run make lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, outside {requirement.specifier}: run make lock"
        )


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_has_hashes(lock):
    assert hashed(lock) == set(pins(lock))


def test_the_development_lock_keeps_the_services_versions():
    runtime, development = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: development[name] for name in runtime} == runtime


def test_this_environment_was_installed_from_the_lock():
    for name, version in pins("requirements-dev.lock").items():
        assert importlib.metadata.version(name) == version, name
