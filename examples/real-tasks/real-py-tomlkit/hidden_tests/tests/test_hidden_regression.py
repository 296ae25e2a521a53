import tomllib

import tomlkit


def test_backslash_in_key_is_escaped_when_dumping() -> None:
    out = tomlkit.dumps({"C:\\temp": 1})
    assert out == '"C:\\\\temp" = 1\n'
    assert tomllib.loads(out) == {"C:\\temp": 1}


def test_key_with_backslash_round_trips() -> None:
    doc = tomlkit.document()
    doc.add(tomlkit.key("a\\b"), "x")
    assert tomlkit.parse(doc.as_string()) == {"a\\b": "x"}
