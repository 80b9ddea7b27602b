import os

import pytest

from vlan_nats.auth import build_auth, connect_options
from vlan_nats.errors import ConfigError


def secret(tmp_path, name, value, mode=0o600):
    p = tmp_path / name
    p.write_text(value + "\n")
    os.chmod(p, mode)
    return str(p)


def test_nothing_is_nothing():
    a = build_auth(environ={})
    assert connect_options(a) == {} and a.describe() == "none"


def test_user_and_password_from_a_file(tmp_path):
    path = secret(tmp_path, "pw", "s3cret")
    a = build_auth(user="u", password_file=path, environ={})
    opts = connect_options(a)
    assert opts["user"] == "u" and opts["password"]() == "s3cret"
    # Read again at every connection attempt: a fixed file is used at once;
    # one that cannot be read leaves the value read before.
    changed = []
    opts = connect_options(a, on_change=changed.append)
    secret(tmp_path, "pw", "n3w")
    assert opts["password"]() == "n3w" and changed == [path]
    (tmp_path / "pw").unlink()
    assert opts["password"]() == "n3w"
    assert "s3cret" not in repr(a) and a.describe() == "user:u"
    assert a.loose_files == ()


def test_secrets_from_the_environment():
    a = build_auth(user="u", environ={"VLAN_NATS_PASSWORD": "pw"})
    assert connect_options(a)["password"] == "pw"
    t = build_auth(environ={"VLAN_NATS_TOKEN": "tok"})
    assert connect_options(t) == {"token": "tok"} and t.describe() == "token"


def test_loose_secret_files_are_reported(tmp_path):
    path = secret(tmp_path, "tok", "t", mode=0o644)
    assert build_auth(token_file=path, environ={}).loose_files == (path,)


@pytest.mark.parametrize(
    "kw, fragment",
    [
        ({"user": "u"}, "needs a password"),
        ({"password_file": "PW"}, "needs --user"),
        ({"token_file": "/nonexistent/tok"}, "cannot read token file"),
        ({"tls_cert": "CERT"}, "go together"),
        ({"tls_ca": "/nonexistent/ca.pem"}, "cannot read TLS CA file"),
    ],
)
def test_mistakes(tmp_path, kw, fragment):
    kw = {k: secret(tmp_path, k, "x") if v in ("PW", "CERT") else v for k, v in kw.items()}
    with pytest.raises(ConfigError, match=fragment):
        build_auth(environ={}, **kw)


def test_methods_are_exclusive(tmp_path):
    with pytest.raises(ConfigError, match="use one of"):
        build_auth(
            user="u", token_file=secret(tmp_path, "t", "t"), environ={"VLAN_NATS_PASSWORD": "p"}
        )
    with pytest.raises(ConfigError, match="use one of"):
        build_auth(
            nkey=secret(tmp_path, "n", "SU..."), token_file=secret(tmp_path, "t", "t"), environ={}
        )


def test_nkey_seed_file(tmp_path):
    seed = secret(tmp_path, "user.nk", "SUAEXAMPLE", mode=0o640)
    a = build_auth(nkey=seed, environ={})
    # Read at start (a later --run-as could not read it on a reconnect).
    assert connect_options(a) == {"nkeys_seed_str": "SUAEXAMPLE"} and a.describe() == "nkey"
    assert a.loose_files == (seed,)
    with pytest.raises(ConfigError, match="cannot read nkey seed file"):
        build_auth(nkey="/nonexistent/user.nk", environ={})


def test_creds_file(tmp_path):
    creds = secret(tmp_path, "node.creds", "-----BEGIN NATS USER JWT-----\nx\n")
    a = build_auth(creds=creds, environ={})
    opts = connect_options(a)
    assert str(opts["user_credentials"]).startswith("-----BEGIN NATS USER JWT")
    assert a.describe() == "creds"
    with pytest.raises(ConfigError, match="use one of"):
        build_auth(creds=creds, nkey=creds, environ={})
    with pytest.raises(ConfigError, match="cannot read credentials file"):
        build_auth(creds="/nonexistent.creds", environ={})
