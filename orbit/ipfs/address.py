"""Where the IPFS node's RPC API is: a URL, ``host:port`` or multiaddr, ``$IPFS_API``, or the default.

>>> api_url("/ip4/127.0.0.1/tcp/5001")
'http://127.0.0.1:5001'
>>> api_url("localhost:5002")
'http://localhost:5002'
"""

from __future__ import annotations

import os
from typing import Final

import httpx

from orbit.errors import IpfsAddressError

__all__ = ["DEFAULT_API", "api_url"]

DEFAULT_API: Final = "http://127.0.0.1:5001"


def api_url(api: str | None = None) -> str:
    """Return the RPC base URL for ``api`` (a URL, ``host:port`` or multiaddr), ``$IPFS_API`` or the default.

    Raises:
        IpfsAddressError: the address is not understood.
    """
    text = (api if api is not None else os.environ.get("IPFS_API") or DEFAULT_API).strip()
    if text.startswith("/"):
        return _multiaddr_url(text)
    if "://" not in text:
        text = "http://" + text
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as e:
        raise IpfsAddressError(f"not a URL or multiaddr: {text!r} ({e})") from e
    if url.scheme not in ("http", "https") or not url.host:
        raise IpfsAddressError(f"not an http(s) URL with a host: {text!r}")
    path = url.path.rstrip("/")
    path = path.removesuffix("/api/v0")
    return str(url.copy_with(path=path or "/", query=None, fragment=None)).rstrip("/")


def _multiaddr_url(text: str) -> str:
    parts = text.strip("/").split("/")
    scheme = "http"
    if parts and parts[-1] in ("http", "https"):
        scheme = parts.pop()
    if len(parts) != 4 or parts[2] != "tcp" or not parts[3].isdigit():
        raise IpfsAddressError(
            f"unsupported multiaddr {text!r}: expected /ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>"
        )
    proto, host, _, port = parts
    if proto == "ip6":
        host = f"[{host}]"
    elif proto not in ("ip4", "dns", "dns4", "dns6"):
        raise IpfsAddressError(f"unsupported multiaddr protocol {proto!r} in {text!r}")
    return f"{scheme}://{host}:{port}"
