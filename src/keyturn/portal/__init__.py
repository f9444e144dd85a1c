"""The reference portal: an account's API keys as web pages, the dialogs of the seed's flow.

Built only on keyturn's public API, as an embedder would build theirs: Starlette, Jinja2
templates rendered on the server, and one small script for what HTML cannot do alone (modal
dialogs, the "I have saved the API secret" gate, countdowns, copying). Needs the ``portal``
extra (``pip install 'keyturn[portal]'``, included in ``server``). ``keyturn serve`` runs it
beside the Deribit API; a host application mounts :func:`build_portal` under its own prefix and
login. Nothing here decides a lifecycle rule: the service does.
"""

from keyturn.portal.app import PORTAL_POLICY, build_portal, build_site
from keyturn.portal.mailbox import DevMailbox

__all__ = ["PORTAL_POLICY", "DevMailbox", "build_portal", "build_site"]
