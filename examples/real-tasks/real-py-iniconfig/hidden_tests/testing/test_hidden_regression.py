from iniconfig import IniConfig


def test_value_containing_equals_sign() -> None:
    config = IniConfig("x", data="[section]\nopts = --foo=1 --bar=2\n")
    assert config["section"]["opts"] == "--foo=1 --bar=2"
    assert list(config["section"]) == ["opts"]
