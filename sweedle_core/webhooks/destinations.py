"""Where a webhook may go: public addresses only, unless the operator allows a network.

A webhook makes the server send a request on a submitter's behalf; unchecked, it reaches what
the submitter cannot (the loopback interface, the LAN, a cloud's metadata service) and each
attempt's outcome tells them what is there. So a destination's host is resolved and every
address it resolves to must be public. Refused: loopback, unspecified, link-local (the cloud
metadata service lives there), private (RFC 1918, IPv6 unique-local), shared (CGNAT,
100.64.0.0/10), multicast, and any other address that is not globally reachable; an IPv6
address carrying an IPv4 one (IPv4-mapped, -compatible, 6to4, Teredo, NAT64) is judged by the
IPv4 address too. Numeric hosts in any form the resolver takes (``2130706433``, ``0x7f.1``,
``0177.0.0.1``) are resolved like names, so they are judged by what they mean. Networks in
``WEBHOOK_ALLOWED_CIDRS`` are allowed (receivers inside the operator's own network).

The check runs when a job is submitted (a 422 naming the rule) and again before every attempt,
whose connection then goes to the address that passed: a name cannot resolve to a public
address for the check and a private one for the connection (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from sweedle_core.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses it resolves to; `system_resolver` by default.
Resolver = Callable[[str, int], Awaitable[list[str]]]

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 behind a NAT64 gateway (RFC 6052)
_V4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible IPv6 (RFC 4291)


class DestinationRefused(InvalidInput):
    """A webhook URL this server will not send to; the message names the rule."""

    code = "webhook_destination_refused"


@dataclass(frozen=True)
class Destination:
    """A webhook URL whose host passed the check: ``address`` is where to connect."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system's resolver gives ``host`` (numeric forms included)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def refusal(address: Address, allowed: Sequence[Network] = ()) -> str | None:
    """The rule ``address`` breaks as a webhook destination, or None when it may be used."""
    if any(address.version == network.version and address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None and (rule := refusal(inner, allowed)) is not None:
            return f"{rule} (inside an IPv6 address)"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_private:
        return "a private address" if address.version == 4 else "a unique-local or private address"
    if not address.is_global or address.is_reserved:
        return "not a public address"
    return None


async def checked_destination(
    url: str, allowed: Sequence[Network] = (), resolver: Resolver = system_resolver
) -> Destination:
    """``url``'s destination once every address its host resolves to passed `refusal`; raises
    `DestinationRefused` naming the rule (or saying the host does not resolve)."""
    parts = urlsplit(url)
    host = _ascii_host(url)
    if parts.scheme not in ("http", "https") or not host:
        raise DestinationRefused("webhook_url must be an http:// or https:// URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused("webhook_url has a port that is not a number") from None
    try:
        found = await resolver(host, port)
    except (OSError, UnicodeError):
        raise DestinationRefused(f"webhook_url's host {host!r} does not resolve") from None
    if not found:
        raise DestinationRefused(f"webhook_url's host {host!r} does not resolve")
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]  # scope ids dropped
    for address in addresses:
        if (rule := refusal(address, allowed)) is not None:
            # The rule, not the address: what a name resolves to inside is not the caller's.
            resolved = "is" if host == str(address) else "resolves to"
            raise DestinationRefused(
                f"webhook_url's host {host!r} {resolved} {rule}; webhooks go only to public "
                "addresses (an operator allows inside networks with WEBHOOK_ALLOWED_CIDRS)"
            )
    return Destination(url, parts.scheme, host, port, str(addresses[0]))


def _ascii_host(url: str) -> str | None:
    """The URL's host as the HTTP client sends it (IDNA-encoded, lower case), or None; a host
    the client cannot parse (``0177.0.0.1``) as written, so the check still names its rule."""
    try:
        return httpx.URL(url).raw_host.decode("ascii") or None
    except (httpx.InvalidURL, UnicodeDecodeError):
        return urlsplit(url).hostname


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64,
    compatible), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _V4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
