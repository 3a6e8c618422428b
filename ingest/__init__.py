"""Ingest: a council's raw extract -> the canonical frame (clear, in memory) + quarantined rows.

Where things are:
    feed.py         FeedDefinition: the YAML schema of feeds/<council>/<dataset>.yaml
    feeds.py        load_feed / load_feeds (errors name file, line, key), landing_dir, newest_extract
    read.py         read_extract: CSV / XLSX / Parquet -> text frame; ExtractError for unusable files
    standardise.py  pure Series -> Series standardisers (names, postcode, NINO, address, ...)
    validate.py     vectorised checks and parsers (NINO/postcode rules, dates, booleans, formulas)
    extract.py      ingest_extract(feed, path) -> IngestResult: map -> validate -> standardise
    placeholders.py placeholder_mask(values, kind): 'UNKNOWN', 01/01/1900, a value far more frequent than
                    the rest (shared with record linkage, which treats placeholders as missing)
    quality.py      the data-quality profile of an extract and its change since the feed's previous one
                    (the previous profiles come in from the caller: ingest reads no store)
    propose.py      mapping proposals from a sample, scored on header and values (feeds add)

Ingest imports only the foundation (``councilmatch``); its commands (``councilmatch feeds ...``)
are ``orchestrate.commands.feeds``.
"""
