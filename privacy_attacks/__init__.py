"""Insider attacks on the pseudonymised store (issue 11, item 4b): test and bench code only.

The attacker holds the *decrypted* store (tokens, Bloom filters, clear fields) but not the
keyring, knows the algorithms (they are in this repository), and uses public knowledge that
is not the generator's: the US census name frequency tables shipped by the ``names``
package and the ``nicknames`` package's hand-curated English nickname data.

* :mod:`privacy_attacks.frequency` - rank-aligns token frequencies with the public tables,
  plain and grouped (initial -> Soundex -> name);
* :mod:`privacy_attacks.bloom` - the frequent-pattern attack on Bloom-filter columns
  (align frequent filters with frequent names, learn which bits each q-gram sets, decode
  every other filter against the dictionary) and the Hamming-weight-to-length check;
* :mod:`privacy_attacks.linkage` - how many records the clear fields single out;
* :mod:`privacy_attacks.report` - runs them all and scores them against ground truth
  (the vault, read with the keyring: the *scorer* needs it, the attacks never see it).

Production code (anonymise, ingest, matching, review, dags, councilmatch) never imports
this package. ``python -m privacy_attacks --home DIR`` prints the table.
"""
