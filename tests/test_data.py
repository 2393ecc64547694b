"""numbacnn.data: search order, IDX parsing (gzip and raw), clear errors, and downloads from a local server."""
import functools
import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from numbacnn import data
from numbacnn.data import DataFormatError, DataNotFoundError, load_fashion_mnist, write_idx


def make_dataset(directory, n_train=12, n_test=6, gz=True, seed=0):
    """Write a tiny Fashion-MNIST look-alike (same names and format) into ``directory``; return the arrays."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
              "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for key, arr in arrays.items():
        write_idx(directory / (data.FILES[key] + (".gz" if gz else "")), arr)
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data anywhere: empty cache, no $NUMBACNN_DATA, a system dir that does not exist, no mirrors."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NUMBACNN_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(data, "MIRRORS", ["http://127.0.0.1:9/nothing-here/"])  # refused at once
    return tmp_path


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_reads_idx_files(isolated, gz):
    arrays = make_dataset(isolated / "d", gz=gz)
    ds = load_fashion_mnist(isolated / "d")
    assert ds.train_images.shape == (12, 1, 28, 28) and ds.train_images.dtype == np.float32
    assert ds.test_labels.shape == (6,) and ds.test_labels.dtype == np.int64
    np.testing.assert_array_equal(ds.train_images[:, 0], arrays["train_images"] / np.float32(255))
    np.testing.assert_array_equal(ds.test_labels, arrays["test_labels"])
    assert 0 <= ds.train_images.min() and ds.train_images.max() <= 1


def test_search_order(isolated, monkeypatch):
    env, cache, system = isolated / "env", data.cache_dir(), isolated / "system"
    make_dataset(system, n_train=3)
    assert len(load_fashion_mnist().train_labels) == 3
    make_dataset(cache, n_train=4)
    assert len(load_fashion_mnist().train_labels) == 4
    make_dataset(env, n_train=5)
    monkeypatch.setenv("NUMBACNN_DATA", str(env))
    assert len(load_fashion_mnist().train_labels) == 5
    make_dataset(isolated / "root", n_train=6)
    assert len(load_fashion_mnist(isolated / "root").train_labels) == 6
    assert data.locate_fashion_mnist() == env


def test_not_found_names_every_place_and_how_to_get_it(isolated, monkeypatch):
    monkeypatch.setenv("NUMBACNN_DATA", str(isolated / "envdir"))
    (isolated / "empty").mkdir()
    with pytest.raises(DataNotFoundError) as err:
        load_fashion_mnist(isolated / "empty")
    msg = str(err.value)
    for place in (isolated / "empty", isolated / "envdir", data.cache_dir(), isolated / "system"):
        assert str(place) in msg
    assert f"{isolated / 'empty'} (does not hold the four files)" in msg
    assert f"{isolated / 'system'} (does not exist)" in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "--data-dir" in msg
    assert "Downloading into" in msg and "failed" in msg
    assert not list(data.cache_dir().glob("*")) if data.cache_dir().exists() else True


def test_missing_root_is_an_error_even_when_data_exists_elsewhere(isolated):
    make_dataset(isolated / "system")
    with pytest.raises(DataNotFoundError, match="typo does not exist. Fashion-MNIST is in .*system: leave out"):
        load_fashion_mnist(isolated / "typo")


def test_no_download_option(isolated):
    with pytest.raises(DataNotFoundError, match=r"\$NUMBACNN_DATA: not set"):
        load_fashion_mnist(download_missing=False)


def _break(path, how):
    raw = gzip.decompress(path.read_bytes())
    if how == "truncated-gzip":
        path.write_bytes(path.read_bytes()[:-40])
    elif how == "short-data":
        path.write_bytes(gzip.compress(raw[:-10]))
    elif how == "bad-magic":
        path.write_bytes(gzip.compress(b"\x00\x00\x08\x07" + raw[4:]))
    elif how == "not-gzip-garbage":
        path.write_bytes(b"\x1f\x8bthis is not gzip")


@pytest.mark.parametrize("how", ["truncated-gzip", "short-data", "bad-magic", "not-gzip-garbage"])
def test_corrupt_file_names_the_file(isolated, how):
    make_dataset(isolated / "d")
    bad = isolated / "d" / "t10k-images-idx3-ubyte.gz"
    _break(bad, how)
    with pytest.raises(DataFormatError, match=str(bad).replace(".", r"\.")):
        load_fashion_mnist(isolated / "d")


def test_image_and_label_counts_must_agree(isolated):
    make_dataset(isolated / "d")
    write_idx(isolated / "d" / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(DataFormatError, match="12 images but .* 11 labels"):
        load_fashion_mnist(isolated / "d")


# ----------------------------------------------------------------------------------------------
# Downloads, from a server on 127.0.0.1 (never the internet)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields (base URL, directory)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", www
    httpd.shutdown()
    httpd.server_close()


def _serve_dataset(www, monkeypatch):
    make_dataset(www)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in www.glob("*.gz")}
    monkeypatch.setattr(data, "MD5", md5)
    return md5


def test_download_into_cache_verifies_checksums(isolated, server, monkeypatch, capsys):
    url, www = server
    _serve_dataset(www, monkeypatch)
    monkeypatch.setattr(data, "MIRRORS", ["http://127.0.0.1:9/dead/", url])  # the first mirror fails
    ds = load_fashion_mnist()
    assert ds.train_images.shape == (12, 1, 28, 28)
    cached = sorted(p.name for p in data.cache_dir().iterdir())
    assert cached == sorted(n + ".gz" for n in data.FILES.values())  # nothing else (no .part files)
    assert "downloading train-images-idx3-ubyte.gz" in capsys.readouterr().err
    assert data.locate_fashion_mnist() == data.cache_dir()


def test_progress_callback_sees_every_byte(isolated, server, monkeypatch, capsys):
    """A callable ``progress(name, done, total)`` replaces the default line: 0 first, then up to the file's size."""
    url, www = server
    _serve_dataset(www, monkeypatch)
    monkeypatch.setattr(data, "MIRRORS", [url])
    calls = []
    load_fashion_mnist(progress=lambda *args: calls.append(args))
    assert "downloading" not in capsys.readouterr().err
    for name in (n + ".gz" for n in data.FILES.values()):
        seen = [(done, total) for n, done, total in calls if n == name]
        size = (www / name).stat().st_size
        assert seen[0] == (0, size) and seen[-1] == (size, size)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_checksum_mismatch_leaves_no_partial_file(isolated, server, monkeypatch):
    url, www = server
    md5 = _serve_dataset(www, monkeypatch)
    monkeypatch.setattr(data, "MD5", {**md5, "t10k-images-idx3-ubyte.gz": "0" * 32})
    monkeypatch.setattr(data, "MIRRORS", [url])
    with pytest.raises(DataNotFoundError, match="MD5"):
        load_fashion_mnist(progress=False)
    names = [p.name for p in data.cache_dir().iterdir()]
    assert "t10k-images-idx3-ubyte.gz" not in names and not [n for n in names if n.endswith(".part")]


def test_missing_file_on_server_leaves_no_partial_file(isolated, server, monkeypatch):
    url, www = server
    _serve_dataset(www, monkeypatch)
    (www / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setattr(data, "MIRRORS", [url])
    with pytest.raises(DataNotFoundError, match="404"):
        load_fashion_mnist(progress=False)
    assert not [p for p in data.cache_dir().iterdir() if p.name.startswith(".") or "t10k-labels" in p.name]


def test_interrupted_download_leaves_no_partial_file(isolated, server, monkeypatch):
    url, www = server
    _serve_dataset(www, monkeypatch)
    monkeypatch.setattr(data, "MIRRORS", [url])
    real = data._md5

    def interrupt(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "_md5", interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_fashion_mnist(progress=False)
    assert list(data.cache_dir().iterdir()) == []
    monkeypatch.setattr(data, "_md5", real)


def test_official_checksums_are_the_published_ones():
    assert data.MD5["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert set(data.MD5) == {n + ".gz" for n in data.FILES.values()}
    assert data.MIRRORS[0].startswith("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com")


@pytest.mark.realdata
def test_real_fashion_mnist():
    if data.locate_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    ds = load_fashion_mnist(download_missing=False)
    assert ds.train_images.shape == (60000, 1, 28, 28) and ds.test_images.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.train_labels).tolist() == [6000] * 10
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10
