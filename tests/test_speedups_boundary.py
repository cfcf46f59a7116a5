"""The C boundary is typed: framewire/_speedups.pyi declares exactly what framewire._speedups
exports, without Any, and every C piece takes the parameters of its pure-Python twin.

The stub is read with ast (it cannot be imported). Signatures are compared three ways: the
stub against the twin (names, defaults, keyword-only names), the stub against the C text
signature where the C code documents one, and, where it does not (methods of the C types), the
stub's argument counts against the C code by calling with one argument too few and one too many,
which must raise TypeError before anything else happens.
"""

from __future__ import annotations

import ast
import asyncio
import collections.abc
import importlib
import inspect
import re
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MemberDescriptorType, ModuleType

import pytest

from framewire.aio.ws.websocket import WebSocket
from framewire.aio.ws.websocket_methods import PyWebSocketMethods, WebSocketMethods
from framewire.sansio import speedups as framewire_speedups
from framewire.sansio.connection import Connection, Role

# Any ImportError means "not built" here, as in framewire.sansio.speedups.
speedups = pytest.importorskip("framewire._speedups", exc_type=ImportError)

# The stub ships next to the extension it describes (pyproject.toml's package-data).
STUB = Path(speedups.__file__).with_name("_speedups.pyi")

# Each export's pure-Python twin, as (module, name); None for the pieces without one.
TWINS: dict[str, tuple[str, str] | None] = {
    "apply_mask": ("framewire.sansio.mask", "py_apply_mask"),
    "parse_whole_frames": ("framewire.sansio.whole_frames", "py_parse_whole_frames"),
    "parse_field_lines": ("framewire.sansio.field_lines", "py_parse_field_lines"),
    "encode_fields": ("framewire.sansio.http11_encode", "py_encode_fields"),
    "parse_upgrade_request": ("framewire.sansio.upgrade_request", "py_parse_upgrade_request"),
    "Wakeup": ("framewire.aio.ws.wakeup", "PyWakeup"),
    "Inbox": ("framewire.aio.ws.inbox", "PyInbox"),
    "WebSocketMethods": ("framewire.aio.ws.websocket_methods", "PyWebSocketMethods"),
    "PayloadBuffer": None,
    "Poller": None,
    "DirectWriter": None,
    "SENT": None,
    "use_connection_flags": None,
    "use_running_tasks": None,
}


@dataclass(frozen=True)
class Parameters:
    """What a signature says about calling it: positional names, how many of them have
    defaults, and the keyword-only names."""

    positional: tuple[str, ...]
    defaults: int
    keyword_only: tuple[str, ...]

    @property
    def fewest(self) -> int:
        return len(self.positional) - self.defaults


def stub_parameters(function: ast.FunctionDef, *, method: bool) -> Parameters:
    arguments = function.args
    positional = [argument.arg for argument in arguments.posonlyargs + arguments.args]
    if method:
        positional = positional[1:]  # self
    return Parameters(
        tuple(positional),
        len(arguments.defaults),
        tuple(argument.arg for argument in arguments.kwonlyargs),
    )


def runtime_parameters(function: Callable[..., object], *, method: bool) -> Parameters:
    parameters = list(inspect.signature(function).parameters.values())
    if method:
        parameters = parameters[1:]  # self
    positional = [
        parameter
        for parameter in parameters
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    return Parameters(
        tuple(parameter.name for parameter in positional),
        sum(parameter.default is not parameter.empty for parameter in positional),
        tuple(
            parameter.name for parameter in parameters if parameter.kind is parameter.KEYWORD_ONLY
        ),
    )


# ------------------------------------------------------------------------ reading the stub


def stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(), filename=str(STUB))


def applicable(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of ``body`` that apply on this platform: ``if sys.platform == ...``
    blocks are evaluated, as type checkers do."""
    for statement in body:
        if isinstance(statement, ast.If):
            condition = eval(
                compile(ast.Expression(statement.test), str(STUB), "eval"), {"sys": sys}
            )
            yield from applicable(statement.body if condition else statement.orelse)
        else:
            yield statement


def declared(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """Names declared by ``body`` (imports are not declarations), with their statements."""
    names: dict[str, ast.stmt] = {}
    for statement in applicable(body):
        if isinstance(statement, ast.FunctionDef | ast.ClassDef):
            names[statement.name] = statement
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            names[statement.target.id] = statement
        elif isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    names[target.id] = statement
    return names


def public(names: Iterable[str]) -> set[str]:
    return {name for name in names if not name.startswith("_")}


def stub_function(name: str) -> ast.FunctionDef:
    statement = declared(stub_tree().body)[name]
    assert isinstance(statement, ast.FunctionDef)
    return statement


def stub_class(name: str) -> dict[str, ast.stmt]:
    statement = declared(stub_tree().body)[name]
    assert isinstance(statement, ast.ClassDef)
    return declared(statement.body)


def twin_of(name: str) -> object:
    location = TWINS[name]
    assert location is not None
    module: ModuleType = importlib.import_module(location[0])
    return getattr(module, location[1])


# ------------------------------------------------------------------------ the module


def test_the_stub_declares_exactly_what_the_extension_exports() -> None:
    assert public(declared(stub_tree().body)) == public(dir(speedups))


def test_every_export_is_listed_with_its_twin_or_as_having_none() -> None:
    assert public(dir(speedups)) <= set(TWINS)
    linux_only = {"Poller", "DirectWriter", "SENT", "WebSocketMethods"}
    missing = set(TWINS) - public(dir(speedups))
    assert missing <= linux_only and (not missing or sys.platform != "linux")


def test_framewire_takes_from_the_extension_exactly_what_the_stub_declares() -> None:
    # sansio/speedups.py uses the extension only when it exports all of these (one built from
    # older sources is left alone), and the modules import their C twins typed by the stub.
    assert public(declared(stub_tree().body)) == set(framewire_speedups.EXPORTS)
    assert framewire_speedups.BUILT


def test_no_any_crosses_the_boundary() -> None:
    for node in ast.walk(stub_tree()):
        if isinstance(node, ast.Name):
            assert node.id != "Any", f"Any at line {node.lineno} of {STUB.name}"
        elif isinstance(node, ast.Attribute):
            assert node.attr != "Any", f"Any at line {node.lineno} of {STUB.name}"
        elif isinstance(node, ast.ImportFrom):
            assert "Any" not in {alias.name for alias in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # A quoted annotation ("Any | None") would hide from the checks above.
            assert "Any" not in node.value.split(), f"Any in a string at line {node.lineno}"


def test_every_declared_name_has_a_docstring_or_is_a_value() -> None:
    for name, statement in declared(stub_tree().body).items():
        if isinstance(statement, ast.FunctionDef | ast.ClassDef) and not name.startswith("_"):
            assert ast.get_docstring(statement), f"{name} has no docstring in {STUB.name}"


# ------------------------------------------------------------------------ functions

FUNCTIONS = sorted(
    name
    for name in TWINS
    if isinstance(getattr(speedups, name, None), type(len))  # builtin functions
)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_stub_has_the_c_functions_text_signature(name: str) -> None:
    c_function = getattr(speedups, name)
    assert c_function.__text_signature__, f"{name} documents no signature"
    assert stub_parameters(stub_function(name), method=False) == runtime_parameters(
        c_function, method=False
    )


@pytest.mark.parametrize("name", [name for name in FUNCTIONS if TWINS[name] is not None])
def test_each_c_function_takes_its_twins_parameters(name: str) -> None:
    twin = twin_of(name)
    assert callable(twin)
    assert stub_parameters(stub_function(name), method=False) == runtime_parameters(
        twin, method=False
    )


# ------------------------------------------------------------------------ types


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def instance_of(name: str, loop: asyncio.AbstractEventLoop) -> object:
    """A fresh instance of the C type ``name``, made with keyword arguments: the stub's
    ``__init__`` parameter names are the C code's."""

    def noop() -> None:
        return None

    makers: dict[str, Callable[[], object]] = {
        "PayloadBuffer": lambda: speedups.PayloadBuffer(length=8),
        "Wakeup": lambda: speedups.Wakeup(loop=loop),
        "Inbox": lambda: speedups.Inbox(
            max_queue=1, max_queue_bytes=1, pause_reading=noop, resume_reading=noop
        ),
        "Poller": lambda: speedups.Poller(buffer=bytearray(16)),
        "DirectWriter": lambda: speedups.DirectWriter(fd=-1, transport=None),
        "WebSocketMethods": lambda: speedups.WebSocketMethods(),
    }
    return makers[name]()


TYPES = sorted(name for name in TWINS if isinstance(getattr(speedups, name, None), type))


def methods_of(members: dict[str, ast.stmt]) -> dict[str, ast.FunctionDef]:
    """The methods a stub class declares, properties left out."""
    return {
        name: statement
        for name, statement in members.items()
        if isinstance(statement, ast.FunctionDef)
        and not any(
            isinstance(decorator, ast.Name) and decorator.id == "property"
            for decorator in statement.decorator_list
        )
    }


def own_names(cls: type) -> set[str]:
    return public(set(dir(cls)) - set(dir(object)))


def provided_by_the_subclass(name: str) -> set[str]:
    """Attributes a twin only annotates: the class that derives from it provides them (as
    WebSocket does for WebSocketMethods), and the stub declares them likewise."""
    if TWINS[name] is None:
        return set()
    twin = twin_of(name)
    return {
        attribute
        for attribute in vars(twin).get("__annotations__", {})
        if not hasattr(twin, attribute)
    }


@pytest.mark.parametrize("name", TYPES)
def test_the_stub_declares_every_public_member_of_each_c_type(name: str) -> None:
    declared_members = public(stub_class(name)) - provided_by_the_subclass(name)
    assert declared_members == own_names(getattr(speedups, name))


@pytest.mark.parametrize("name", TYPES)
def test_each_c_type_is_made_with_the_stubs_constructor_arguments(
    name: str, loop: asyncio.AbstractEventLoop
) -> None:
    c_type = getattr(speedups, name)
    assert isinstance(instance_of(name, loop), c_type)
    init = methods_of(stub_class(name)).get("__init__")
    if init is not None:
        parameters = stub_parameters(init, method=True)
        with pytest.raises(TypeError):
            c_type(*[None] * (len(parameters.positional) + 1))


def c_method_cases() -> list[tuple[str, str]]:
    cases = []
    for name in TYPES:
        for method in methods_of(stub_class(name)):
            if not method.startswith("_"):
                cases.append((name, method))
    return cases


@pytest.mark.parametrize(("name", "method"), c_method_cases())
def test_each_c_method_takes_the_stubs_argument_counts(
    name: str, method: str, loop: asyncio.AbstractEventLoop
) -> None:
    parameters = stub_parameters(methods_of(stub_class(name))[method], method=True)
    bound = getattr(instance_of(name, loop), method)
    signature = getattr(bound, "__text_signature__", None)
    if signature:
        runtime = runtime_parameters(getattr(getattr(speedups, name), method), method=True)
        if runtime.positional == ("object",) and signature.endswith("object, /)"):
            # Python 3.13 gives a one-argument C method (METH_O) this signature by itself:
            # it says how many arguments, not their names.
            assert len(parameters.positional) == 1 and parameters.defaults == 0
        else:
            assert parameters == runtime
    # One argument too many and, when some are required, one too few: TypeError before anything
    # is done with the (dummy) arguments.
    with pytest.raises(TypeError):
        bound(*[None] * (len(parameters.positional) + 1))
    if parameters.fewest:
        with pytest.raises(TypeError):
            bound(*[None] * (parameters.fewest - 1))


def twin_method_cases() -> list[tuple[str, str]]:
    cases = []
    for name in TYPES:
        if TWINS[name] is None:
            continue
        twin = twin_of(name)
        for method in methods_of(stub_class(name)):
            if method == "__init__" and "__init__" not in vars(twin):
                continue  # object's: nothing to compare
            if callable(getattr(twin, method, None)):
                cases.append((name, method))
    return cases


@pytest.mark.parametrize(("name", "method"), twin_method_cases())
def test_each_c_method_takes_its_twins_parameters(name: str, method: str) -> None:
    twin = twin_of(name)
    assert isinstance(twin, type)
    assert stub_parameters(methods_of(stub_class(name))[method], method=True) == runtime_parameters(
        getattr(twin, method), method=True
    )


@pytest.mark.parametrize("name", [name for name in TYPES if TWINS[name] is not None])
def test_each_c_type_has_its_twins_public_members(name: str) -> None:
    twin = twin_of(name)
    assert isinstance(twin, type)
    c_type = getattr(speedups, name)
    assert own_names(c_type) == own_names(twin)
    for protocol in ("__await__", "__anext__", "__aiter__", "__len__"):
        assert hasattr(c_type, protocol) == hasattr(twin, protocol), protocol


def test_keyword_arguments_of_the_twins_are_accepted_by_the_c_wakeup(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # Wakeup's methods document no text signature: asyncio's Task calls them with these.
    wakeup = speedups.Wakeup(loop)
    wakeup.add_done_callback(lambda _: None, context=None)
    assert wakeup.cancel(msg="stop") is True


@pytest.mark.skipif(sys.platform != "linux", reason="SENT is built on Linux only")
def test_sent_is_the_coroutine_the_stub_declares() -> None:
    sent = speedups.SENT
    assert isinstance(sent, collections.abc.Coroutine)
    with pytest.raises(StopIteration) as finished:
        sent.send(None)
    assert finished.value.value is None


# ------------------------------------------------------------------------ what C may look up

# The C sources, where the package was installed from a checkout (an editable install).
C_SOURCES = sorted((Path(speedups.__file__).parent / "_speedups_c").glob("*.[ch]"))


def c_sources() -> list[Path]:
    if not C_SOURCES:
        pytest.skip("the C sources are not beside the installed package")
    return C_SOURCES


def test_the_c_code_imports_no_framewire_module() -> None:
    # Python hands C what it needs (use_connection_flags(), use_running_tasks()).
    for path in c_sources():
        for module in re.findall(r'PyImport_\w+\(\s*"([^"]+)"', path.read_text()):
            assert not module.startswith("framewire"), f"{path.name} imports {module}"


def test_use_connection_flags_takes_only_slots_of_the_class() -> None:
    class NotAConnection:
        __slots__ = ("flag",)

    for arguments in (
        (NotAConnection, Connection._frame_now_ok, Connection._whole_frames_ok),
        (Connection, NotAConnection.flag, NotAConnection.flag),
        (Connection(Role.SERVER), Connection._frame_now_ok, Connection._whole_frames_ok),
    ):
        with pytest.raises(TypeError):
            speedups.use_connection_flags(*arguments)


@pytest.mark.skipif(sys.platform != "linux", reason="DirectWriter is built on Linux only")
def test_direct_writer_reads_the_flags_sansio_hands_over() -> None:
    class IdleTransport:
        def get_write_buffer_size(self) -> int:
            return 0

    ours, peers = socket.socketpair()
    with ours, peers:
        writer = speedups.DirectWriter(ours.fileno(), IdleTransport())
        connection = Connection(Role.SERVER)
        assert writer.send_message(connection, b"hi") is True
        assert peers.recv(16) == b"\x82\x02hi"
        connection.send_close()
        assert writer.send_message(connection, b"hi") is False  # not frame_now_ok any more
        assert writer.send_message(object(), b"hi") is False  # not a Connection


def test_the_c_code_looks_up_no_private_name_it_does_not_declare() -> None:
    # A private name in C is one of its own types' slots or methods (WebSocketMethods declares
    # what it reads and calls back on a WebSocket): a rename cannot silently miss C.
    declared_by_c = {
        name
        for export in dir(speedups)
        if isinstance(getattr(speedups, export), type)
        for name in vars(getattr(speedups, export))
    }
    for path in c_sources():
        for name in re.findall(r'"(_[A-Za-z]\w*)"', path.read_text()):
            assert name in declared_by_c, f"{path.name} looks up {name}, which no C type declares"


@pytest.fixture
def websocket_methods() -> type:
    if not hasattr(speedups, "WebSocketMethods"):
        pytest.skip("WebSocketMethods is built on Linux only")
    return speedups.WebSocketMethods  # type: ignore[no-any-return]


def slots_of(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items() if isinstance(value, MemberDescriptorType)}


def test_websocket_methods_declares_the_twins_slots_and_websocket_shadows_none(
    websocket_methods: type,
) -> None:
    slots = slots_of(websocket_methods)
    assert slots == slots_of(PyWebSocketMethods) == set(PyWebSocketMethods.__slots__)
    # The C type, or its twin with FRAMEWIRE_NO_SPEEDUPS set.
    assert WebSocketMethods in (websocket_methods, PyWebSocketMethods)
    for cls in WebSocket.__mro__[: WebSocket.__mro__.index(WebSocketMethods)]:
        # A class attribute of the same name would take the instance's writes away from the
        # slot, and C would read a stale value.
        assert not slots & set(vars(cls)), cls

    async def made() -> WebSocket:
        return WebSocket(Connection(Role.SERVER))

    websocket = asyncio.run(made())
    assert not slots & set(vars(websocket))
    assert websocket._polled is None and websocket.connection.role is Role.SERVER


def test_what_c_calls_back_is_declared_by_both_twins_and_overridden_by_websocket(
    websocket_methods: type,
) -> None:
    callbacks = {
        name
        for name, value in vars(websocket_methods).items()
        if name.startswith("_") and not name.startswith("__") and callable(value)
    }
    assert callbacks == {"_send", "_anext_general"}
    for name in callbacks:
        assert callable(vars(PyWebSocketMethods).get(name)), name
        assert callable(vars(WebSocket).get(name)), f"WebSocket does not override {name}"
        arguments = ("message", True) if name == "_send" else ()
        with pytest.raises(NotImplementedError):
            getattr(websocket_methods(), name)(*arguments)
