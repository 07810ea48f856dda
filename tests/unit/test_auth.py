"""Token verification: keys by kid (HS256 secrets, RS256 and ES256 public keys, several at once
for rotation), issuer, audience, expiry with clock skew, and no algorithm a key was not made for."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service_kit.config import AuthSettings, ConfigError, auth_settings
from service_kit.errors import Unauthenticated
from service_kit.http.auth import TokenVerifier
from service_kit.http.caller import Caller
from service_kit.http.dev_tokens import every_scope, mint, write_signing_key

ISSUER, AUDIENCE = "https://id.example", "order-product"
SECRET = "a-secret-of-at-least-thirty-two-bytes!!"


def jwk_of(key, kid: str, alg: str) -> dict:
    if alg == "HS256":
        return json.loads(jwt.algorithms.HMACAlgorithm.to_jwk(key)) | {"kid": kid, "alg": alg}
    algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    return json.loads(algorithm.to_jwk(key.public_key())) | {"kid": kid, "alg": alg}


@pytest.fixture
def keys():
    return {
        "hs": (SECRET.encode(), "HS256"),
        "rs": (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        "es": (ec.generate_private_key(ec.SECP256R1()), "ES256"),
    }


@pytest.fixture
def verifier(tmp_path, keys):
    jwks = {"keys": [jwk_of(key, kid, alg) for kid, (key, alg) in keys.items()]}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    return TokenVerifier(AuthSettings(str(tmp_path / "jwks.json"), ISSUER, AUDIENCE, leeway_s=5))


def token(keys, kid: str = "hs", **overrides) -> str:
    key, alg = keys[kid]
    now = int(time.time())
    claims = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 60, "iat": now}
    claims |= {"scope": "orders:read orders:write"} | overrides
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


@pytest.mark.parametrize("kid", ["hs", "rs", "es"])
def test_each_key_of_the_set_verifies_its_own_tokens(verifier, keys, kid):
    caller = verifier.caller(f"Bearer {token(keys, kid)}")
    assert caller == Caller("alice", frozenset({"orders:read", "orders:write"}))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": -60}, "expired"),  # times: seconds from now
        ({"nbf": 60}, "(?i)not yet valid"),
        ({"aud": "someone-else"}, "(?i)audience"),
        ({"iss": "https://other.example"}, "(?i)issuer"),
        ({"sub": None}, "sub"),
        ({"sub": 5}, "(?i)sub"),
        ({"sub": ["alice"]}, "(?i)sub"),
        ({"exp": None}, "exp"),
        ({"scope": 5}, "scope"),
        ({"scope": [1, 2]}, "scope"),
        ({"scope": {"orders:read": True}}, "scope"),
        ({"scope": None, "scp": 5}, "scope"),
    ],
)
def test_claims_that_do_not_hold_are_refused(verifier, keys, overrides, reason):
    now = int(time.time())
    claims = {
        name: now + value if name in ("exp", "nbf") and value is not None else value
        for name, value in overrides.items()
    }
    with pytest.raises(Unauthenticated, match=reason):
        verifier.verify(token(keys, **claims))


def test_some_clock_skew_is_allowed(verifier, keys):
    assert verifier.verify(token(keys, exp=int(time.time()) - 2)).subject == "alice"


def test_a_signature_from_another_key_or_an_unknown_kid_is_refused(verifier, keys):
    forged = jwt.encode(
        {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
        "another-secret-of-at-least-thirty-two-bytes",
        algorithm="HS256",
        headers={"kid": "hs"},
    )
    with pytest.raises(Unauthenticated, match="Signature verification failed"):
        verifier.verify(forged)
    with pytest.raises(Unauthenticated, match="no key"):
        verifier.verify(jwt.encode({"sub": "x"}, SECRET, algorithm="HS256", headers={"kid": "z"}))
    with pytest.raises(Unauthenticated, match="no key"):  # several keys: a token must say which
        verifier.verify(jwt.encode({"sub": "x"}, SECRET, algorithm="HS256"))


def test_no_algorithm_but_the_keys_own(verifier, keys):
    claims = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "hs"})
    with pytest.raises(Unauthenticated):
        verifier.verify(unsigned)
    # The RSA key's public PEM used as an HMAC secret (the classic algorithm confusion).
    public_pem = (
        keys["rs"][0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def part(document: dict) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=")

    signed = part({"alg": "HS256", "typ": "JWT", "kid": "rs"}) + b"." + part(claims)
    signature = hmac.new(public_pem, signed, hashlib.sha256).digest()
    confused = (signed + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()
    with pytest.raises(Unauthenticated):
        verifier.verify(confused)


def test_the_authorization_header_must_be_a_bearer_token(verifier, keys):
    for header in (None, "", "Basic YWxpY2U6cHc=", "Bearer", token(keys)):
        with pytest.raises(Unauthenticated):
            verifier.caller(header)


def test_a_remembered_token_still_expires(verifier, keys):
    short = token(keys, exp=int(time.time()) - 4)  # within the 5 s of skew: valid, for now
    assert verifier.verify(short).subject == "alice"
    time.sleep(1.2)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(short)


def test_scopes_may_come_as_a_list(verifier, keys):
    caller = verifier.verify(token(keys, scope=None, scp=["products:write"]))
    assert caller.scopes == {"products:write"}


def test_the_development_key_signs_what_make_token_prints(tmp_path):
    write_signing_key(tmp_path / "jwks.json")
    assert (tmp_path / "jwks.json").stat().st_mode & 0o777 == 0o600
    settings = auth_settings({"AUTH_JWKS_FILE": str(tmp_path / "jwks.json")})
    caller = TokenVerifier(settings).verify(mint(settings, every_scope()))
    assert caller.scopes == {"orders:read", "orders:read:all", "orders:write", "products:write"}


def test_public_keys_alone_cannot_sign(tmp_path, keys):
    jwks = {"keys": [jwk_of(keys["rs"][0], "rs", "RS256")]}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    settings = auth_settings({"AUTH_JWKS_FILE": str(tmp_path / "jwks.json")})
    with pytest.raises(ValueError, match="identity provider"):
        mint(settings, ["orders:read"])


def test_a_missing_or_unusable_key_file_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="AUTH_JWKS_FILE"):
        auth_settings({"AUTH_JWKS_FILE": str(tmp_path / "absent.json")})
    (tmp_path / "bad.json").write_text('{"keys": [{"kty": "nope"}]}')
    settings = auth_settings({"AUTH_JWKS_FILE": str(tmp_path / "bad.json")})
    with pytest.raises(ConfigError, match="not a usable JWKS"):
        TokenVerifier(settings)
