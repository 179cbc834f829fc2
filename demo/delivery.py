"""The delivery demo: nothing to create, only how a channel gets started.

Channel tokens are secrets shown once, so the demo creates none (a token printed in every
`make run` log would be a standing credential); it prints the command instead. No webhook
subscription either: it would POST to an address nobody listens on.
"""

from __future__ import annotations

HOW_TO_START_A_CHANNEL = (
    "delivery demo: channels authenticate with a token; create one with",
    "  .venv/bin/python manage.py create_channel_token --name 'Demo email sender' "
    "--channel email --channel portal --jurisdiction US",
    "  (the key is printed once, on the last line). Then see docs/api.md, e.g.",
    "  curl -H 'Authorization: Token <key>' http://127.0.0.1:8000/api/v1/modules/",
)


def load(out) -> None:
    for line in HOW_TO_START_A_CHANNEL:
        out.write(line + "\n")
