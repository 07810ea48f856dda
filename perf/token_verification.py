"""What verifying a bearer token costs a web worker: the first time (signature and claims) and
every time after (the remembered token), for each kind of key.

    .venv/bin/python -m perf.token_verification
"""

import json
import tempfile
import time
import timeit
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service_kit.config import AuthSettings
from service_kit.http.auth import TokenVerifier

ISSUER, AUDIENCE = "bench", "order-product"


def _cost(settings: AuthSettings, alg: str, key: object) -> tuple[float, float]:
    """µs to verify a new token, and one already verified (with its header parsed)."""
    claims = {"sub": "bench", "iss": ISSUER, "aud": AUDIENCE, "scope": "orders:write"}
    expires = int(time.time()) + 3600
    tokens = [
        jwt.encode(
            claims | {"exp": expires, "jti": str(n)}, key, algorithm=alg, headers={"kid": alg}
        )
        for n in range(2000)
    ]
    verifier = TokenVerifier(settings)
    first = timeit.timeit(lambda: [verifier.verify(t) for t in tokens], number=1) / len(tokens)
    header = f"Bearer {tokens[0]}"
    again = timeit.timeit(lambda: verifier.caller(header), number=200_000) / 200_000
    return first * 1e6, again * 1e6


def main() -> None:
    keys = {
        "HS256": b"a-secret-of-at-least-thirty-two-bytes!!",
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
    }
    jwks = {"keys": []}
    for alg, key in keys.items():
        if alg == "HS256":
            jwk = json.loads(jwt.algorithms.HMACAlgorithm.to_jwk(key))
        else:
            algorithm = (
                jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
            )
            jwk = json.loads(algorithm.to_jwk(key.public_key()))
        jwks["keys"].append(jwk | {"kid": alg, "alg": alg})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "jwks.json"
        path.write_text(json.dumps(jwks))
        settings = AuthSettings(str(path), ISSUER, AUDIENCE, leeway_s=30)
        print("µs per verification   first (signature)   remembered")
        for alg, key in keys.items():
            first, again = _cost(settings, alg, key)
            print(f"  {alg}               {first:8.1f}            {again:8.2f}")


if __name__ == "__main__":
    main()
