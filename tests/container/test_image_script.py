"""`make image`'s own logic, without building: the containers.conf edit and the base's key."""

from __future__ import annotations

import tomllib

import pytest

from devtools import image


@pytest.mark.parametrize("before", [
    "",
    "# site settings\n[containers]\nlog_size_max = 10\n",
    '[engine]\nruntime = "crun"\nevents_logger = "file"\n\n[network]\nnetwork_backend = "cni"\n',
    '[containers]\ndefault_ulimits = ["nofile=1024:1024"]\n[engine]\n',
])
def test_containers_conf_gets_runc_and_no_ulimits_and_keeps_the_rest(before):
    text = before
    for (section, key), value in {("engine", "runtime"): '"runc"',
                                  ("containers", "default_ulimits"): "[]"}.items():
        text = image.set_toml_key(text, section, key, value)
    conf = tomllib.loads(text)
    assert conf["engine"]["runtime"] == "runc"
    assert conf["containers"]["default_ulimits"] == []
    old = tomllib.loads(before)
    for section, values in old.items():
        for key, value in values.items():
            if (section, key) not in {("engine", "runtime"), ("containers", "default_ulimits")}:
                assert conf[section][key] == value, f"{section}.{key} was changed"
    # idempotent: a second pass changes nothing
    again = image.set_toml_key(text, "engine", "runtime", '"runc"')
    assert tomllib.loads(again) == conf and again.count("runtime") == 1


def test_the_local_base_tag_follows_what_the_base_holds(monkeypatch):
    tag = image.base_tag()
    assert tag.startswith("localhost/ghvault-base:") and tag == image.base_tag()
    monkeypatch.setitem(image.BASE_RECIPE, "packages",
                        [*image.BASE_RECIPE["packages"], "python-is-python3"])
    assert image.base_tag() != tag


def test_the_official_base_is_read_from_the_dockerfile():
    assert image.official_base().startswith("python:3.11.")
