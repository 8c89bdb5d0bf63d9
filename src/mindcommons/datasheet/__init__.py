"""Transparency: Croissant datasheets, diversity profiles and the public dataset list."""

from __future__ import annotations

from mindcommons.datasheet.croissant import StewardFields, read_datasheet, write_datasheet
from mindcommons.datasheet.profile import (
    Profile,
    Reference,
    federated_profile,
    read_reference,
    site_profile,
)
from mindcommons.datasheet.public import public_list

__all__ = [
    "Profile",
    "Reference",
    "StewardFields",
    "federated_profile",
    "public_list",
    "read_datasheet",
    "read_reference",
    "site_profile",
    "write_datasheet",
]
