"""PII and secrets in chat logs: find them, and redact them before any text leaves the machine.

Pure and offline. Regular expressions find candidates; checksums and validators keep the real ones (Luhn with issuer
prefixes and lengths, IBAN mod-97, python-stdnum's national-id rules, libphonenumber's metadata); nearby words decide
what a checksum cannot (a 9-digit number is an SSN only next to "SSN" or "social"; a Luhn-valid number labelled
"order" or "IMEI" is not a card). Detection runs on the NFKC form of the text, with zero-width and bidi-control
characters removed and digits of other scripts mapped to ASCII, and every offset is mapped back to the original text.

API (no function returns or stores a matched value, so hits, findings and counts can go into logs and reports)::

    detect(text, *, context="") -> list[Hit]   hits in one text, sorted, not overlapping; `context` (the previous
                                               message, say) only lends keywords such as "SSN" or "NHS number"
    scan(messages) -> list[Finding]            hits per message of a conversation, plus values split over two
                                               messages of the same role ("my card is 4111 1111" / "1111 1111"),
                                               marked on both messages
    redact(messages) -> Redacted               the messages with every finding replaced by a typed placeholder that
                                               is the same for the same value within the conversation (<EMAIL_1>,
                                               <PHONE_2>, <CARD_1>...), and counts by kind
    counts(found) -> dict[str, int]            values per kind, for a summary line

Kinds, and the tag their placeholders use: email (EMAIL, obfuscated forms such as `name [at] example [dot] com`
included), phone (PHONE: with + or 00 for any region; national formats of PHONE_REGIONS; other digit groups only
next to a word such as "phone" or "call"), payment_card (CARD: Luhn, an issuer's prefix and length), iban (IBAN),
ip_address (IP: public addresses only, not private, loopback, link-local, CGNAT, documentation or multicast ones),
us_ssn (SSN), national_id (ID: UK NINO and NHS, DE Steuer-ID, FR NIR, ES DNI and NIE, IT codice fiscale, NL BSN, IN
Aadhaar and PAN, BR CPF) and secret (SECRET: API keys by prefix, JWTs, PEM private keys, credentials in URLs, bearer
tokens, `password=` values, random-looking tokens of 32 characters or more, but not UUIDs, digests or git SHAs).
Placeholders already in a log (<EMAIL>, [NAME], {{phone}}, <PHONE_1>, ${API_KEY}, %EMAIL%) are never hits, and
redact() scans its own result until nothing is found, so redacting twice changes nothing.

Fail closed: nothing here catches an exception, except the two that only say that a candidate is not a number
(libphonenumber's NumberParseException, ipaddress's ValueError). Any exception from these functions (a bug, a missing
dependency, an unexpected input) means the text was not checked: a caller must treat it as "do not send".

Known gaps: person names, street addresses, postcodes and dates of birth are not detected, nor values spelled out in
words ("four one one one") or written with homoglyphs (Cyrillic o for 0). Context decides some cases, with these
consequences: a Luhn-valid number with an issuer's prefix and length is a card unless a label such as "order" or
"IMEI" stands right before it, so an unlabelled order number can be redacted as one; a compact 9-, 10- or 11-digit
SSN, BSN, NHS number, CPF or Steuer-ID counts only near its keyword (in its message or the previous one); a 12-digit
number that passes Aadhaar's Verhoeff check counts without one; a national-format phone number of a region outside
PHONE_REGIONS counts only next to a word such as "phone" or "call"; a dotted quad after a version word ("firmware
81.12.3.40") is not an address, any other public one is; hex strings count as secrets only after words such as
"token" or "secret", and a password only after a key such as "password=". A value split over two messages is found
only within 120 characters of the join, and in the next message of the same role, at most one message later.
Modules, each importing only those listed before it: lazy (regular expressions compiled on first use), hits (the
result types), normalization, context (masking and keywords), the finders credentials, contact, identifiers and
network, then detection (detect), conversation (scan) and redaction (redact).
"""

from __future__ import annotations

from utg_pytest.pii.contact import PHONE_REGIONS
from utg_pytest.pii.conversation import scan
from utg_pytest.pii.detection import detect
from utg_pytest.pii.hits import KINDS, TAGS, Finding, Hit, Redacted, counts
from utg_pytest.pii.redaction import redact

__all__ = ["KINDS", "PHONE_REGIONS", "TAGS", "Finding", "Hit", "Redacted", "counts", "detect", "redact", "scan"]
