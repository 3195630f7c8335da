"""Which ``Host`` names a dashboard answers to: one allow-list for ``plait ui`` and the ASGI app.

Every request naming another host is refused, whatever address the server listens on, so a page
on another site that points its own name at this machine (DNS rebinding) gets nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

#: The names of this machine's loopback interface, always allowed.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

#: Bind addresses that mean "every interface": they name no host by themselves.
_ANY_ADDRESS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is a loopback address or ``localhost``.

    :param host: a host name or IP address (``[::1]`` brackets allowed).
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str | None, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Return the ``Host`` names a dashboard answers to: loopback names, the address it binds to
    when that is one address (not ``0.0.0.0``), and ``extra``, lower-cased and without repeats.

    :param host: the address the server binds to; ``None`` when another server binds (the ASGI app).
    :param extra: the names given with ``--allowed-host`` or ``PLAIT_UI_ALLOWED_HOSTS``.
    """
    names = [*LOOPBACK_HOSTS]
    bound = (host or "").strip("[]")
    if bound not in _ANY_ADDRESS and not is_loopback(bound):
        names.append(bound)
    names += [name.strip() for name in extra if name.strip()]
    return tuple(dict.fromkeys(n.lower() for n in names))
