"""Subject -> perceived-gender tables for the gender-bias protocols (NTU-60, Toyota Smarthome).

The public datasets do not ship these labels; a table is a CSV the user provides::

    subject,gender
    P001,male
    P002,female

Columns ``subject`` and ``gender`` (header names case-insensitive; other columns are ignored). The
subject must be written exactly as the manifest's ``subject`` field (``P001`` for NTU RGB+D,
``p03`` for Toyota Smarthome). Gender is ``female`` or ``male`` (``f``/``m``, any case, accepted and
normalized). A subject listed twice is an error.
"""

from __future__ import annotations

from pathlib import Path

from data_manifests.builders._common import read_csv_rows
from data_manifests.schema import ManifestError

GENDERS = {"female": "female", "f": "female", "male": "male", "m": "male"}


def read_gender_table(path: str | Path) -> dict[str, str]:
    """``subject -> "female" | "male"`` from a CSV with columns subject,gender (see the module docstring)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ManifestError(f"gender table not found: expected {path} (a CSV with columns subject,gender)")
    table: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, row in read_csv_rows(path, "gender table", ("subject", "gender")):
        subject = row["subject"]
        gender = GENDERS.get(row["gender"].lower())
        if not subject:
            raise ManifestError(f"{path}:{number}: empty subject")
        if gender is None:
            raise ManifestError(f"{path}:{number}: gender {row['gender']!r} is not female/male (or f/m)")
        if subject in table:
            raise ManifestError(
                f"{path}:{number}: subject {subject!r} is listed again (first on line {first_line[subject]})"
            )
        table[subject] = gender
        first_line[subject] = number
    if not table:
        raise ManifestError(f"{path}: the gender table has no rows (expected lines like 'P001,male')")
    return table
