"""CSV reading: Arrow's fast reader gives exactly what pandas' reader gives."""

import pandas as pd
import pytest

from features.contracts import InputError
from pipelines.catalog import read_raw


def _pandas(path):
    return pd.read_csv(path, dtype=str, keep_default_na=True, encoding="utf-8")


def test_csv_reads_like_pandas_on_awkward_files(tmp_path, demo_tables):
    awkward = tmp_path / "awkward.csv"
    # a byte-order mark, padded ids, a quoted comma, a blank line, NA markers, a duplicate header
    awkward.write_bytes(
        b"\xef\xbb\xbfcustomer_id,timestamp,amount,amount\n"
        b' a ,2024-01-01,"1,5",2\n\nb,,NA,\nc,2024-01-02T10:00:00+02:00,N/A,null\n'
    )
    paths = [awkward]
    for table in ("transactions", "interactions", "customers"):
        paths.append(tmp_path / f"{table}.csv")
        pd.read_parquet(demo_tables[table]).to_csv(paths[-1], index=False)
    for path in paths:
        pd.testing.assert_frame_equal(read_raw(path), _pandas(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"customer_id,amount\na,1\nb,2,3\n", "cannot be read"),  # ragged row
        (b"customer_id,amount\n\xff\xfe,1\n", "not UTF-8 text"),
    ],
)
def test_files_arrows_reader_rejects_get_pandas_messages(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_bytes(content)

    with pytest.raises(InputError, match=message):
        read_raw(path)
