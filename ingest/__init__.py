"""Ingest: a council's raw extract -> the canonical frame (clear, in memory) + quarantined rows.

Where things are:
    feed.py         FeedDefinition: the YAML schema of feeds/<council>/<dataset>.yaml
    feeds.py        load_feed / load_feeds (errors name file, line, key), landing_dir, newest_extract
    read.py         read_extract: CSV / XLSX / Parquet -> text frame; ExtractError for unusable files
    standardise.py  pure Series -> Series standardisers (names, postcode, NINO, address, ...)
    validate.py     vectorised checks and parsers (NINO/postcode rules, dates, booleans, formulas)
    extract.py      ingest_extract(feed, path) -> IngestResult: map -> validate -> standardise
    manifest.py     write_manifest / read_manifests (store/manifests/<council>/<dataset>/)
    propose.py      mapping proposals from a sample (feeds add)
    cli.py          councilmatch feeds list | check | add
"""
