"""The load benchmark's stand-in trainer: stdlib only (it starts in milliseconds), it reports
``run.succeeded`` to ``$K_SINK`` with the run's callback token, as the trainer does, and exits.
Retries a refused or unanswered callback for a while, as the trainer's reporter does."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid


def main() -> int:
    run_id = os.environ["JOBPLANE_RUN_ID"]
    headers = {
        "ce-specversion": "1.0", "ce-type": "dev.jobplane.run.succeeded", "ce-id": str(uuid.uuid4()),
        "ce-source": f"/jobplane/trainer/{run_id}", "ce-subject": run_id,
        "ce-jobplanetoken": os.environ["JOBPLANE_CALLBACK_TOKEN"], "Content-Type": "application/json",
    }
    body = json.dumps({"metrics": {"accuracy": 0.9}, "artifacts": {}, "promoted": False}).encode()
    deadline = time.monotonic() + 120
    while True:
        try:
            request = urllib.request.Request(os.environ["K_SINK"], data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
            return 0
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                return 1
            time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main())
