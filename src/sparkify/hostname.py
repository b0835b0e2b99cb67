"""The host name Airflow records for each task it runs (``[core] hostname_callable``).

Several Celery workers on one machine share its host name; each sets ``SPARKIFY_WORKER_NAME`` to be told apart
in the UI and the API. Elsewhere this is the machine's fully qualified name, as Airflow's default.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("SPARKIFY_WORKER_NAME") or socket.getfqdn()
