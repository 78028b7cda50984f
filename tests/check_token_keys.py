"""Run as a script with SOFTHSM2_CONF set: report the keys on a token as JSON.

It uses python-pkcs11 directly, not Tamga's hsm package, so it checks what is really on the
token. Arguments: module path, token label, user PIN, and optionally the kind of key:
``private`` (the default: every private key) or ``secret`` (every secret key, as the TOTP
seeds of tamga-cloud).
"""

from __future__ import annotations

import json
import sys

import pkcs11
from pkcs11 import Attribute, ObjectClass

FLAGS = {
    "sensitive": Attribute.SENSITIVE,
    "always_sensitive": Attribute.ALWAYS_SENSITIVE,
    "extractable": Attribute.EXTRACTABLE,
    "never_extractable": Attribute.NEVER_EXTRACTABLE,
    "decrypt": Attribute.DECRYPT,
    "unwrap": Attribute.UNWRAP,
    "derive": Attribute.DERIVE,
    "sign": Attribute.SIGN,
    "token": Attribute.TOKEN,
    "private": Attribute.PRIVATE,
}
SECRET_FLAGS = FLAGS | {
    "encrypt": Attribute.ENCRYPT,
    "wrap": Attribute.WRAP,
    "verify": Attribute.VERIFY,
    "modifiable": Attribute.MODIFIABLE,
}


def _readable(key: pkcs11.Object, attribute: Attribute) -> bool:
    try:
        key[attribute]
    except pkcs11.exceptions.AttributeSensitive:
        return False
    return True


def _private_keys(session: pkcs11.Session) -> list[dict[str, object]]:
    report = []
    for key in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
        entry: dict[str, object] = {name: bool(key[attr]) for name, attr in FLAGS.items()}
        entry["label"] = key[Attribute.LABEL]
        entry["has_id"] = bool(key[Attribute.ID])
        secret = (
            Attribute.VALUE
            if key[Attribute.KEY_TYPE] == pkcs11.KeyType.EC
            else Attribute.PRIVATE_EXPONENT
        )
        entry["value_readable"] = _readable(key, secret)
        report.append(entry)
    return report


def _secret_keys(session: pkcs11.Session) -> list[dict[str, object]]:
    report = []
    for key in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
        entry: dict[str, object] = {name: bool(key[attr]) for name, attr in SECRET_FLAGS.items()}
        entry["label"] = key[Attribute.LABEL]
        entry["key_type"] = str(key[Attribute.KEY_TYPE])
        entry["value_readable"] = _readable(key, Attribute.VALUE)
        report.append(entry)
    return report


def main() -> None:
    module, label, pin = sys.argv[1:4]
    kind = sys.argv[4] if len(sys.argv) > 4 else "private"
    token = pkcs11.lib(module).get_token(token_label=label)
    with token.open(user_pin=pin) as session:
        report = _secret_keys(session) if kind == "secret" else _private_keys(session)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
