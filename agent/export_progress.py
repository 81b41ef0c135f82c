"""The progress of export reads on the terminal, for ``kooperant agent preview`` and ``check``.

Both commands start the adapters and wait for their data. ``export_progress_display`` shows one
line per export file on stderr with its name, a bar and the bytes read of its size, until the
file is read. It draws only while stderr is a terminal. Otherwise it yields None, so the export
adapters log a long parse instead, as they do in ``kooperant agent run``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from adapters.exports.progress import ReadProgress, ReadProgressCallback
from kooperant.i18n import Catalog
from kooperant.terminal_progress import TerminalProgress

_ = Catalog.for_module(__name__)


@contextmanager
def export_progress_display(*, enabled: bool = True) -> Iterator[ReadProgressCallback | None]:
    """Yield a callback for ``Agent(read_progress=...)``, or None when nothing is drawn.

    ``enabled=False`` draws nothing on a terminal too, as ``--json`` output does.
    """
    with TerminalProgress(enabled=enabled, count_bytes=True) as display:
        if not display.enabled:
            yield None
            return

        def show(progress: ReadProgress) -> None:
            # A folder of EDI++ files is read file by file, so finished lines must not pile up.
            if progress.done:
                display.remove(progress.path)
                return
            display.show(
                progress.path,
                _("reading", file=progress.path.name),
                completed=progress.bytes_read,
                total=progress.total_bytes,
            )

        yield show
