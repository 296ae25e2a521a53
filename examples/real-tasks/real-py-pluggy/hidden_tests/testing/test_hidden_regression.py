from pluggy import HookimplMarker
from pluggy import HookspecMarker
from pluggy import PluginManager


hookspec = HookspecMarker("example")
hookimpl = HookimplMarker("example")


class Spec:
    @hookspec
    def myhook(self):
        pass


def test_tryfirst_runs_before_later_registered_plain_impl() -> None:
    pm = PluginManager("example")
    pm.add_hookspecs(Spec)

    class First:
        @hookimpl(tryfirst=True)
        def myhook(self):
            return "first"

    class Plain:
        @hookimpl
        def myhook(self):
            return "plain"

    pm.register(First())
    pm.register(Plain())
    assert pm.hook.myhook() == ["first", "plain"]
