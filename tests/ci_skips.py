"""A pytest plugin (``pytest_plugins`` in ``conftest.py``): under ``CI=true`` a skipped test fails the run."""

from __future__ import annotations

import os

# Under CI (CI=true, set by the CI runner) a skipped test is a gap, not a pass: the CI
# machine has the system packages, the side environments and ../shared, so every skip
# means an install step failed or a requirement went missing. List the reasons and fail
# the run. Elsewhere (a laptop without chromium, a clone without ../shared) skips stay.
_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest's hook signature
    skipped = terminalreporter.stats.get("skipped", [])
    if not (_CI and skipped):
        return
    terminalreporter.section("skipped under CI=true (each is a failure here)", red=True)
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.write_line(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if _CI and skipped and exitstatus == 0:
        session.exitstatus = 1
