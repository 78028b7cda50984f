"""Run as a script with SOFTHSM2_CONF set: report every private key on a token as JSON.

It uses python-pkcs11 directly, not Tamga's hsm package, so it checks what is really on the
token. Arguments: module path, token label, user PIN.
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


def main() -> None:
    module, label, pin = sys.argv[1:4]
    token = pkcs11.lib(module).get_token(token_label=label)
    report = []
    with token.open(user_pin=pin) as session:
        for key in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
            entry = {name: bool(key[attr]) for name, attr in FLAGS.items()}
            entry["label"] = key[Attribute.LABEL]
            entry["has_id"] = bool(key[Attribute.ID])
            secret = (
                Attribute.VALUE
                if key[Attribute.KEY_TYPE] == pkcs11.KeyType.EC
                else Attribute.PRIVATE_EXPONENT
            )
            try:
                key[secret]
                entry["value_readable"] = True
            except pkcs11.exceptions.AttributeSensitive:
                entry["value_readable"] = False
            report.append(entry)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
