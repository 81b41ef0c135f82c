"""User-facing text of the server: CLI help and output, errors, and the dashboard.

The texts are in server/locale/{pl,en}/LC_MESSAGES/server.po under the context
``server.messages``; templates reach them through ``t(message_id)``.
"""

from __future__ import annotations

from kooperant.i18n import Catalog

MESSAGES = Catalog.for_module(__name__)
