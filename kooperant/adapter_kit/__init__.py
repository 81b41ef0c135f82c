"""Conformance kit: check an adapter class against the life cycle of ``adapters.base``.

For adapter authors, in their own package's tests. Describe the adapter once as an
``AdapterCase``: the class, sample settings, optionally files for the config folder and a
predicate for the observations expected after start. Then subclass ``AdapterConformanceTests`` in
a pytest module, or call ``run_conformance`` or the single checks from any test runner. A broken
rule raises ``ConformanceError``, an ``AssertionError`` whose message starts with the rule id
(``Rule``) and shows the offending value.

The checks:

- ``check_settings``: ``settings_model`` subclasses ``AdapterSettings``, builds from the sample,
  rejects an unknown key and is frozen;
- ``check_construction``: ``__init__`` returns at once without I/O, with a config folder that
  does not exist (see ``io_watch`` for how I/O is detected and what it misses);
- ``check_life_cycle``: ``start()`` returns in time without raising; ``collect()``, ``health()``
  and ``withheld_kinds()`` return the documented types at once without I/O; resource ids match
  ``IDENTIFIER_PATTERN``, numbers are finite and times timezone-aware; the expected
  observations appear; the event loop is never blocked; ``stop()`` finishes within
  ``STOP_TIMEOUT_SECONDS`` and leaves no task running. With ``with_files=False`` the same runs
  without the case's files, as for a source missing at start;
- ``check_stop_without_start`` and ``check_stop_after_failed_start``: ``stop()`` is safe on an
  adapter that never started or whose ``start()`` was cancelled.

pytest is not imported; ``AdapterConformanceTests`` only relies on pytest collecting it.
"""

from kooperant.adapter_kit.case import AdapterCase, ChangeCounter, make_context, write_files
from kooperant.adapter_kit.life_cycle import (
    check_construction,
    check_life_cycle,
    check_snapshot,
    check_stop_after_failed_start,
    check_stop_without_start,
)
from kooperant.adapter_kit.rules import RULE_TEXT, ConformanceError, Rule
from kooperant.adapter_kit.suite import AdapterConformanceTests, run_conformance
from kooperant.adapter_kit.values import (
    check_health,
    check_observations,
    check_settings,
    check_withheld,
)

__all__ = [
    "RULE_TEXT",
    "AdapterCase",
    "AdapterConformanceTests",
    "ChangeCounter",
    "ConformanceError",
    "Rule",
    "check_construction",
    "check_health",
    "check_life_cycle",
    "check_observations",
    "check_settings",
    "check_snapshot",
    "check_stop_after_failed_start",
    "check_stop_without_start",
    "check_withheld",
    "make_context",
    "run_conformance",
    "write_files",
]
