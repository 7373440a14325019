"""The ``jobplane`` command: run the embedded plane, and drive a local plane or a cluster over
its HTTP API.

    jobplane up --port 8080 --data-dir ./.jobplane          # the plane in the foreground
    jobplane demo                                           # train the sample bot end to end, exit
    jobplane specs create spec.json | list | show ID | delete ID
    jobplane run train-acme --param epochs=5 --follow       # trigger, then a live progress bar
    jobplane runs train-acme --last 10                      # or: runs --bot acme
    jobplane status RUN --follow | cancel RUN
    jobplane emit bot-changed acme --data bot.json --follow # a bot.changed CloudEvent to the broker
    jobplane predict acme "I lost my card" | search acme "lost card" -k 3
    jobplane render-pingsource spec.json | deadletter list|replay | audit --bot acme
    jobplane retention --dry-run                            # what the retention sweep would delete

Every API command takes ``--url`` (``$JOBPLANE_URL``, default the embedded plane's), sends
``Authorization: Bearer`` with ``--token``, else ``$JOBPLANE_TOKEN``, else the token the plane
keeps in ``{--data-dir}/api.token``, and prints the API's JSON alone with ``--json``. The exit
code says what happened (``exits.EPILOG``).
"""

from .app import app, main
from .exits import Exit
from .render import waiting

__all__ = ["Exit", "app", "main", "waiting"]
