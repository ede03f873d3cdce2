"""Read a panel from CSV, Parquet, Stata ``.dta`` or Excel without touching the file.

The loader only reads; the returned frame is a fresh object, so nothing the user gave is changed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data.errors import DataError

READERS = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".dta": pd.read_stata,
    ".xlsx": pd.read_excel,
    ".xls": pd.read_excel,
}


def read_table(path: str | Path, encoding: str | None = None) -> pd.DataFrame:
    """Read a tabular file into a DataFrame, choosing the reader from the file extension.

    Parameters
    ----------
    path
        A ``.csv``, ``.parquet``/``.pq``, ``.dta``, ``.xlsx`` or ``.xls`` file.
    encoding
        The text encoding of a CSV file (default UTF-8; Chinese statistical yearbooks often
        come as ``gbk`` or ``gb18030``).

    Raises
    ------
    DataError
        If the file does not exist, has an unsupported extension, cannot be parsed, or holds no
        rows.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a data file")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        supported = ", ".join(sorted(READERS))
        raise DataError(f"{path}: unsupported file type '{path.suffix}' (supported: {supported})")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes)")
    if encoding is not None:
        if reader is not pd.read_csv:
            raise DataError(f"{path}: --encoding applies to CSV files only, not {path.suffix}")
        try:
            "".encode(encoding)
        except LookupError:
            raise DataError(f"{path}: unknown encoding '{encoding}'") from None
    try:
        frame = reader(path, encoding=encoding) if encoding else reader(path)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: cannot be decoded as {encoding or 'UTF-8'} (byte {exc.start}); give the "
            "file's encoding with --encoding, e.g. --encoding gbk") from None
    except Exception as exc:  # every reader has its own exception zoo; report them alike
        raise DataError(
            f"{path}: cannot be read as {path.suffix} ({type(exc).__name__}: {exc})"
        ) from exc
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the file has a header but no data rows")
    return frame
