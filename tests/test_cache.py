"""numbacnn._cache: Numba's cache goes to a writable folder when the package folder is read-only."""
import os

from numbacnn import _cache


def test_in_tree_cache_is_kept_when_writable(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(_cache, "_writable", lambda path: True)
    assert _cache.cache_dir() is None


def test_user_cache_dir_when_package_is_read_only(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(_cache, "_writable", lambda path: not path.startswith(_cache._PACKAGE_DIR))
    assert _cache.cache_dir() == os.path.join(str(tmp_path), "numbacnn", "numba")


def test_temp_dir_when_home_is_read_only_too(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(_cache.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.setattr(_cache, "_writable", lambda path: path.startswith(str(tmp_path / "tmp")))
    assert _cache.cache_dir().startswith(str(tmp_path / "tmp"))


def test_user_setting_wins(monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere")
    monkeypatch.setattr(_cache, "_writable", lambda path: False)
    assert _cache.cache_dir() is None


def test_configure_sets_numba_config(monkeypatch, tmp_path):
    import numba.core.config as config

    monkeypatch.setattr(_cache, "cache_dir", lambda: str(tmp_path))
    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    _cache.configure()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path) and config.CACHE_DIR == str(tmp_path)
