"""Errors raised by anonymise. Each message names the file and what to do about it."""

from __future__ import annotations


class AnonymiseError(Exception):
    """Base class for every error raised by the anonymise package."""


class KeyringError(AnonymiseError):
    """The keyring cannot be used (missing, unreadable, wrong key-encryption key)."""


class MissingKEKError(KeyringError):
    """No key-encryption key is configured."""


class DevKEKRefusedError(KeyringError):
    """A development key-encryption key was not opted in to, or production settings refuse it."""


class InvalidKEKError(KeyringError):
    """The configured key-encryption key is not base64 of 32 bytes."""


class WrongKEKError(KeyringError):
    """The keyring does not decrypt under the configured key-encryption key."""


class KeyringMissingError(KeyringError):
    """The home has no keyring yet (run ``councilmatch keys init``)."""


class UnknownKeyError(KeyringError):
    """Data refers to a key version the keyring does not hold."""


class TamperedError(AnonymiseError):
    """An encrypted file failed authentication: it was altered, truncated or is not ours."""


class SchemaError(AnonymiseError):
    """A pseudonymised file or frame does not have the contracted columns and types."""
