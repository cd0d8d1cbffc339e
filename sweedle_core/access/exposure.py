"""Who can reach the service: the bound address, the Host names and browser origins it answers.

Sweedle binds loopback by default, as Jupyter, Ollama, ComfyUI and Gradio do. Binding another
address without API keys would hand anyone on the network every asset and every job, so it is
refused at start unless ``ALLOW_ANONYMOUS_NETWORK`` says it is meant (and then warned about).

Two browser attacks work even on loopback, and are closed here:

- DNS rebinding: a page on ``evil.example`` makes its name resolve to 127.0.0.1 and then reads
  the API as its own origin. Its requests carry ``Host: evil.example``; only the names the
  server is known by pass (`Exposure.allows_host`): loopback names, this machine's names, any
  IP literal (a rebinding needs a name), and ``ALLOWED_HOSTS``.
- Cross-site requests: any page can POST a form to localhost or open a WebSocket to it. A
  state-changing request or a WebSocket with a browser ``Origin`` is refused unless the origin
  is the server's own (the same Host) or in ``CORS_ORIGINS`` (`Exposure.allows_origin`).
  Requests without an ``Origin`` (curl, SDKs, servers) are not from a browser page.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sweedle_core.errors import SweedleError

if TYPE_CHECKING:
    from sweedle_core.config import Settings

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
ANY_HOST = "*"


class ExposureRefused(SweedleError):
    """The service would be open to the network without keys; the message says what to set."""

    code = "exposure_refused"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the service on this machine."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port, lower case (IPv6 without brackets)."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass(frozen=True)
class Exposure:
    """What the running service answers: ``bound`` is the address the HTTP server listens on,
    ``names`` the Host names it answers to (besides IP literals), ``origins`` the browser
    origins allowed to change things (CORS_ORIGINS; the server's own is always allowed)."""

    bound: str
    names: frozenset[str]
    origins: frozenset[str]
    anonymous_network: bool = False

    @classmethod
    def of(cls, settings: Settings, bound: str, *, keys_on: bool) -> Exposure:
        """The exposure of a service bound to ``bound``; raises `ExposureRefused` when that is
        beyond loopback with no API keys and anonymous network access was not asked for."""
        open_network = not is_loopback(bound) and not keys_on
        if open_network and not settings.allow_anonymous_network:
            raise ExposureRefused(
                f"Sweedle would listen on {bound} with no API keys: anyone who can reach this "
                "machine could read, download and delete every asset and queue jobs. Set "
                "API_KEYS (or API_KEYS_FILE; `sweedle keys new` makes one), or bind loopback "
                "(SWEEDLE_HOST=127.0.0.1, the default), or, if open access on this network is "
                "really meant, ALLOW_ANONYMOUS_NETWORK=true"
            )
        names = set(LOOPBACK_NAMES) | {host_name(h) for h in settings.allowed_hosts}
        if not is_loopback(bound):
            names |= _machine_names()
        return cls(
            bound=bound,
            names=frozenset(names),
            origins=frozenset(o.rstrip("/").lower() for o in settings.cors_origins),
            anonymous_network=open_network,
        )

    def allows_host(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header is for this server (no header: an
        HTTP/1.0 client, not a browser)."""
        if header is None or ANY_HOST in self.names:
            return True
        name = host_name(header)
        if name in self.names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def allows_origin(self, origin: str, host: str | None) -> bool:
        """Whether a browser page at ``origin`` may change things here: the server's own
        origin (the same host and port as the request's ``Host``) or one of CORS_ORIGINS.
        With ``ALLOWED_HOSTS=["*"]`` any Host passes, so a matching one proves nothing: only
        CORS_ORIGINS count then."""
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        if ANY_HOST in self.names:
            return False
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or host is None:
            return False  # "null" (a sandboxed frame, a file) and anything odd
        return parts.netloc == host.strip().lower()

    def warning(self) -> str | None:
        """What /health and the log say when anonymous network access was asked for."""
        if not self.anonymous_network:
            return None
        return (
            f"ALLOW_ANONYMOUS_NETWORK is on and Sweedle listens on {self.bound} without API "
            "keys: anyone on the network can read, change and delete everything"
        )


def _machine_names() -> set[str]:
    """This machine's host name and fully qualified name."""
    names = {socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    return names
