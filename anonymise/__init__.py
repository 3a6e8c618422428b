"""anonymise: keyed pseudonyms at ingest, the vault of clear identifiers, encryption at rest.

Where to look (docs/security.md explains the why and the threat model):

    keys.py        keyring: versioned matching keys, HKDF subkeys per purpose, rotate/status
    kek.py         where the key-encryption key comes from (env, Airflow connection, dev file)
    crypto.py      AES-256-GCM envelopes (the only place that encrypts) + atomic writes
    variants.py    derived values per token column (phonetic, sorted name, premise, ...)
    tokens.py      pseudonymise(): canonical frame -> contracted pseudonymised frame
    encodings.py   hardened keyed Bloom filters, bloom_matrix(), dice()
    store.py       write/read the pseudonymised Parquet store, check_key_ids()
    datakeys.py    per-council data keys wrapped by the keyring
    vault.py       Vault.store / Vault.reidentify (audited)
    quarantine.py  encrypted quarantine and raw-extract archive/delete/keep
    at_source.py   council-side `councilmatch pseudonymise`, hub-side accept_at_source()
    cli.py         `councilmatch keys ...`, `pseudonymise`, `vault reidentify`
"""
