"""Named crash points in the import pipeline, for the crash-safety tests.

`CRM_FAULT_CRASH_AT=<point>` makes the process kill itself with SIGKILL at that point (the
same as a power cut or an OOM kill); unset, the call costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after-headers", "after-blobs", "before-commit", "after-commit")


def crash_point(name: str) -> None:
    if os.environ.get("CRM_FAULT_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
