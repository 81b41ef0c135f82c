"""Problem reasons for the agent config and the policy file, in Polish and English.

``MESSAGES`` contains the reasons that ``agent.yamlfile``, ``agent.reasons``, ``agent.config`` and
``agent.policy`` put into a ``Problem``: unreadable files, YAML syntax errors, pydantic validation
errors, invalid ids and the checks of the config and the policy file. A reason is worded in the
current language when the ``Problem`` is built.
"""

from __future__ import annotations

from kooperant.i18n import Catalog

MESSAGES = Catalog.for_module(__name__)
