"""The cloud-signing domain: credentials (PIN, TOTP), SADs, signing and evidence. No Flask."""
