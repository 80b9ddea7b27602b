"""NATS authentication and TLS settings, read from files or the environment.

Secrets never come from the command line (it is visible to every user in
``ps``): ``--password-file``/``--token-file`` or the environment variables
``VLAN_NATS_PASSWORD``/``VLAN_NATS_TOKEN``.  Files holding secrets or keys
that others can read are reported, so the daemon can warn at start.
"""

from __future__ import annotations

import os
import re
import stat
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
) -> NatsAuth:
    """Validate and read the settings.  Raises ConfigError."""
    env = os.environ if environ is None else environ
    loose: list[str] = []
    pw = (
        read_secret(password_file, "password file", loose, "password_file")
        if password_file
        else None
    )
    password = pw or env.get(ENV_PASSWORD) or None
    token = read_secret(token_file, "token file", loose, "token_file") if token_file else None
    token = token or env.get(ENV_TOKEN) or None
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
        nkey_seed_file=_check_file(nkey, "nkey seed file", "nkey", loose),
        creds_file=_check_file(creds, "credentials file", "creds", loose),
        tls_ca=_check_file(tls_ca, "TLS CA file", "tls_ca"),
        tls_cert=_check_file(tls_cert, "TLS certificate", "tls_cert"),
        tls_key=_check_file(tls_key, "TLS key", "tls_key", loose),
        tls_first=tls_first,
        loose_files=tuple(loose),
    )


def connect_options(auth: NatsAuth) -> dict[str, Any]:
    """nats-py ``connect()`` keywords for these settings.  Raises
    ConfigError for unusable certificates or keys."""
    import ssl  # here: ssl loads socket, and config (imported with the core) imports us

    try:
        return _connect_options(auth, ssl)
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"TLS settings: {e}") from None


def _connect_options(auth: NatsAuth, ssl: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if auth.user:
        opts["user"], opts["password"] = auth.user, auth.password
    if auth.token:
        opts["token"] = auth.token
    # Read now, not on each (re)connect: the daemon may have dropped root
    # (--run-as) by then and no longer be able to read them.
    if auth.nkey_seed_file:
        opts["nkeys_seed_str"] = read_secret(auth.nkey_seed_file, "nkey seed file", [])
    if auth.creds_file:
        from nats.aio.client import RawCredentials

        creds = read_secret(auth.creds_file, "credentials file", [])
        opts["user_credentials"] = RawCredentials(creds)  # user JWT + seed (nsc's .creds)
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
