"""NATS authentication and TLS settings, read from files or the environment.

Secrets never come from the command line (it is visible to every user in
``ps``): ``--password-file``/``--token-file`` or the environment variables
``VLAN_NATS_PASSWORD``/``VLAN_NATS_TOKEN``.  Files holding secrets or keys
that others can read are reported, so the daemon can warn at start.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

# The settings, as build_auth() keywords, flags (with - for _) and config keys.
OPTIONS = (
    "user",
    "password_file",
    "token_file",
    "nkey",
    "creds",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "tls_first",
)
log = logging.getLogger(__name__)
ENV_PASSWORD = "VLAN_NATS_PASSWORD"
ENV_TOKEN = "VLAN_NATS_TOKEN"


@dataclass(frozen=True, slots=True)
class NatsAuth:
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    nkey_seed_file: str | None = None
    creds_file: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_first: bool = False
    loose_files: tuple[str, ...] = ()  # secret files readable by group/others
    # Where the token and password came from (None: the environment), so
    # that they are read again on every connection attempt.
    token_file: str | None = None
    password_file: str | None = None

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert or self.tls_first)

    def describe(self) -> str:
        """What is in use, without secrets (for the ready line)."""
        parts = []
        if self.user:
            parts.append(f"user:{self.user}")
        if self.token:
            parts.append("token")
        if self.nkey_seed_file:
            parts.append("nkey")
        if self.creds_file:
            parts.append("creds")
        if self.tls:
            parts.append("mtls" if self.tls_cert else "tls")
        return ",".join(parts) or "none"


def read_secret(path: str, what: str, loose: list[str], option: str | None = None) -> str:
    try:
        st = os.stat(path)
        with open(path) as f:
            value = f.read().strip()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}", option=option) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not text", option=option) from None
    if not value:
        raise ConfigError(f"{what} {path} is empty", option=option)
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        loose.append(path)
    return value


def _check_file(
    path: str | None, what: str, option: str, loose: list[str] | None = None
) -> str | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
        with open(path, "rb"):
            pass
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}", option=option) from None
    if loose is not None and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        loose.append(path)
    return path


def build_auth(
    *,
    user: str | None = None,
    password_file: str | None = None,
    token_file: str | None = None,
    nkey: str | None = None,
    creds: str | None = None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_first: bool = False,
    environ: dict[str, str] | None = None,
    password: str | None = None,
    token: str | None = None,
) -> NatsAuth:
    """Validate and read the settings.  Raises ConfigError.  ``password``
    and ``token``: values from a NATS context or the NATS CLI's
    environment (natsctx.py), used when no file or $VLAN_NATS_* gives one."""
    env = os.environ if environ is None else environ
    loose: list[str] = []
    pw = (
        read_secret(password_file, "password file", loose, "password_file")
        if password_file
        else None
    )
    password = pw or env.get(ENV_PASSWORD) or password or None
    from_file = read_secret(token_file, "token file", loose, "token_file") if token_file else None
    token = from_file or env.get(ENV_TOKEN) or token or None
    if password and not user:
        raise ConfigError("a password needs --user", option="password_file")
    if user and not password:
        raise ConfigError(
            f"--user needs a password: --password-file or ${ENV_PASSWORD}", option="user"
        )
    if sum(map(bool, (token, user, nkey, creds))) > 1:
        which = next(k for k, x in (("token_file", token), ("nkey", nkey), ("creds", creds)) if x)
        raise ConfigError("use one of a token, --user/password, --nkey or --creds", option=which)
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("--tls-cert and --tls-key go together", option="tls_key")
    return NatsAuth(
        user=user,
        password=password,
        token=token,
        token_file=token_file if from_file else None,
        password_file=password_file if pw else None,
        nkey_seed_file=_check_file(nkey, "nkey seed file", "nkey", loose),
        creds_file=_check_file(creds, "credentials file", "creds", loose),
        tls_ca=_check_file(tls_ca, "TLS CA file", "tls_ca"),
        tls_cert=_check_file(tls_cert, "TLS certificate", "tls_cert"),
        tls_key=_check_file(tls_key, "TLS key", "tls_key", loose),
        tls_first=tls_first,
        loose_files=tuple(loose),
    )


class SecretFile:
    """A secret read again from its file on every call: nats-py calls it
    for each CONNECT, so a token or password file fixed while the server
    refuses us is used at the next attempt.  When the file cannot be read
    (gone, or root dropped by --run-as) the last value is used.
    ``on_change(path)`` is told when the value changes."""

    def __init__(
        self,
        path: str,
        value: str,
        what: str,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.path, self.value, self.what, self.on_change = path, value, what, on_change
        self._unreadable = False

    def __call__(self) -> str:
        try:
            value = read_secret(self.path, self.what, [])
        except ConfigError as e:
            if not self._unreadable:
                self._unreadable = True
                log.warning("%s; using the value read before", e)
            return self.value
        self._unreadable = False
        if value != self.value:
            self.value = value
            log.info("secret changed, used from now on path=%s", self.path)
            if self.on_change is not None:
                self.on_change(self.path)
        return value


def _raw_credentials(path: str, value: str, on_change: Callable[[str], None] | None) -> Any:
    """A .creds file as nats-py's RawCredentials, read again each time
    nats-py reads it (every connection attempt)."""
    from nats.aio.client import RawCredentials

    class LiveCredentials(RawCredentials):
        def __init__(self) -> None:
            super().__init__(value)
            self._file = SecretFile(path, value, "credentials file", on_change)

        @property
        def data(self) -> str:
            return self._file()

        @data.setter
        def data(self, _: str) -> None:  # UserString.__init__ sets it
            pass

    return LiveCredentials()


def connect_options(
    auth: NatsAuth, on_change: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """nats-py ``connect()`` keywords for these settings.  The token,
    password and credentials files are read again for every connection
    attempt (``on_change(path)``: one of them changed).  Raises
    ConfigError for unusable certificates or keys."""
    import ssl  # here: ssl loads socket, and config (imported with the core) imports us

    try:
        return _connect_options(auth, ssl, on_change)
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"TLS settings: {e}") from None


def _connect_options(
    auth: NatsAuth, ssl: Any, on_change: Callable[[str], None] | None = None
) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if auth.user:
        opts["user"], opts["password"] = auth.user, auth.password
        if auth.password_file and auth.password:
            opts["password"] = SecretFile(
                auth.password_file, auth.password, "password file", on_change
            )
    if auth.token:
        opts["token"] = auth.token
        if auth.token_file:
            opts["token"] = SecretFile(auth.token_file, auth.token, "token file", on_change)
    # Read now too: the daemon may have dropped root (--run-as) by the
    # next connect and no longer be able to read them; then the values
    # read before are used.  (An nkey seed is the user's identity: a new
    # one takes a restart.)
    if auth.nkey_seed_file:
        opts["nkeys_seed_str"] = read_secret(auth.nkey_seed_file, "nkey seed file", [])
    if auth.creds_file:
        creds = read_secret(auth.creds_file, "credentials file", [])
        # user JWT + seed (nsc's .creds)
        opts["user_credentials"] = _raw_credentials(auth.creds_file, creds, on_change)
    if auth.tls:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=auth.tls_ca)
        if auth.tls_cert:
            ctx.load_cert_chain(auth.tls_cert, auth.tls_key)
        opts["tls"] = ctx
        opts["tls_handshake_first"] = auth.tls_first
    return opts


_CREDS_BLOCK = re.compile(r"-{3,}[^\n]*BEGIN[^\n]*-{3,}\r?\n\s*(\S+?)\s*\r?\n\s*-{3,}[^\n]*END")


def data_connection_secrets(auth: NatsAuth) -> dict[str, Any]:
    """The C datapath's libnats connection takes the same credentials
    (cdatapath.ConnOptions keywords), read now, before --run-as drops root.
    A creds file holds the user JWT and its seed; an nkey seed file gives
    the public key it signs for.  Raises ConfigError."""
    out: dict[str, Any] = {
        "user": auth.user,
        "password": auth.password,
        "token": auth.token,
        "tls": auth.tls,
        "tls_ca": auth.tls_ca,
        "tls_cert": auth.tls_cert,
        "tls_key": auth.tls_key,
    }
    if auth.nkey_seed_file:
        import nkeys

        seed = read_secret(auth.nkey_seed_file, "nkey seed file", [])
        try:
            out["nkey_public"] = nkeys.from_seed(seed.encode()).public_key.decode()
        except Exception:
            raise ConfigError(f"{auth.nkey_seed_file} holds no nkey seed", option="nkey") from None
        out["seed"] = seed
    if auth.creds_file:
        blocks = _CREDS_BLOCK.findall(read_secret(auth.creds_file, "credentials file", []))
        if len(blocks) < 2:
            raise ConfigError(
                f"{auth.creds_file} is not a .creds file (a user JWT and a seed)", option="creds"
            )
        out["jwt"], out["seed"] = blocks[0], blocks[1]
    return out
