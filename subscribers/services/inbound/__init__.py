"""Mail that comes back without an ESP: bounces (RFC 3464 and the MTAs' own formats), complaints (RFC 5965),
auto-replies and List-Unsubscribe mailto requests, through three doors into one service (receive.inbound_receive).

parse.py reads a message, attribute.py ties it to a delivery by its signed VERP address, receive.py acts on it,
quarantine.py keeps what could not be acted on.
"""

from .receive import EX_DATAERR, EX_NOUSER, EX_OK, EX_TEMPFAIL, Door, Outcome, inbound_receive, recipient_accepted

__all__ = [
    "EX_DATAERR",
    "EX_NOUSER",
    "EX_OK",
    "EX_TEMPFAIL",
    "Door",
    "Outcome",
    "inbound_receive",
    "recipient_accepted",
]
