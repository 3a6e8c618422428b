"""anonymise: keyed pseudonyms at ingest, the vault of clear identifiers, encryption at rest.

Where to look (docs/security.md explains the why and the threat model):

    keys.py        keyring: versioned matching keys, HKDF subkeys per purpose, rotate/status
    kek.py         where the key-encryption key comes from (env, sources the caller adds, dev file)
    crypto.py      AES-256-GCM envelopes (the only place that encrypts)
    variants.py    derived values per token column (phonetic, sorted name, premise, ...)
    tokens.py      pseudonymise(): canonical frame -> contracted pseudonymised frame
    encodings.py   hardened keyed Bloom filters, bloom_matrix(), dice()
    pseudonymised.py  write/read the pseudonymised Parquet store, check_key_ids()
    record_index.py   each stored extract's record index (reference + row hashes) kept beside it
    reuse.py       a re-sent extract: rows unchanged since the feed's last one are not processed again
    manifest.py    the store's commit markers (store/manifests/<council>/<dataset>/)
    minimise.py    what the store keeps: generalised fields (policy passed in), keyed record refs
    at_rest.py     encryption at rest of every store file (Parquet modular encryption, JSON envelopes)
    custody.py     re-pseudonymise after a rotation, change the KEK
    datakeys.py    per-council data keys wrapped by the keyring
    vault.py       Vault.store / Vault.reidentify (audited)
    quarantine.py  encrypted quarantine and raw-extract archive/delete/keep
    at_source.py   council-side `councilmatch pseudonymise` (ingest, then tokens), hub-side accept_at_source()

anonymise imports the foundation and ingest, never matching, the orchestration layer or Airflow;
its commands (`councilmatch keys ...`, `pseudonymise`, `vault reidentify`) are
`orchestrate.commands.keys`. Atomic writes are `councilmatch.fileio`.
"""
