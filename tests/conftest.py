"""Fixtures for unit and integration tests alike."""

import os
import shutil

import pytest


@pytest.fixture
def command():
    """``command(name, installed_by)``: the path of a tool the test needs;
    skips without it, but fails under CI=true (the set-up must provide it)."""

    def find(name: str, installed_by: str) -> str:
        path = shutil.which(name)
        if path is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{name} missing ({installed_by} installs it)")
            pytest.skip(f"{name} not installed")
        return path

    return find
