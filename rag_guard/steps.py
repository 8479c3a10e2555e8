"""One code path for sync and async: logic as a generator of calls, run by a sync or an async driver.

The guard, the pipeline, the reply policy and the agent middleware each write their logic once, as a generator
that yields the calls it needs (a Runnable's invoke, a step of a stream) and is sent their results, or thrown
their exceptions, so its own `try` blocks see a failed call as ordinary code would. It may also yield output
(the reply's chunks), which `gathered` collects when other steps run it. `run` / `iterate` make the calls
synchronously, `arun` / `aiterate` with `await`: what differs between the two paths is the handful of lines in
each `Call` below and the drivers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from langchain_core.runnables import Runnable, RunnableConfig

T = TypeVar("T")
R = TypeVar("R")

Steps = Generator[Any, Any, R]
"""A generator that yields `Call`s (and, for `iterate`, output items) and returns R."""


class Call(ABC):
    """One call the logic needs; each driver makes it its own way."""

    @abstractmethod
    def sync(self) -> Any: ...

    @abstractmethod
    async def asynchronous(self) -> Any: ...


@dataclass(frozen=True)
class Invoke(Call):
    """`runnable.invoke(input)`, or `ainvoke`."""

    runnable: Runnable[Any, Any]
    input: Any
    config: RunnableConfig | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def sync(self) -> Any:
        return self.runnable.invoke(self.input, config=self.config, **self.options)

    async def asynchronous(self) -> Any:
        return await self.runnable.ainvoke(self.input, config=self.config, **self.options)


@dataclass(frozen=True)
class OpenStream(Call):
    """`runnable.stream(input)`, or `astream`: the stream, to be read with `NextPiece`."""

    runnable: Runnable[Any, Any]
    input: Any
    config: RunnableConfig | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def sync(self) -> Iterator[Any]:
        return iter(self.runnable.stream(self.input, config=self.config, **self.options))

    async def asynchronous(self) -> AsyncIterator[Any]:
        return aiter(self.runnable.astream(self.input, config=self.config, **self.options))


@dataclass(frozen=True)
class NextPiece(Call):
    """The stream's next piece; None at its end."""

    stream: Any

    def sync(self) -> Any:
        return next(self.stream, None)

    async def asynchronous(self) -> Any:
        return await anext(self.stream, None)


@dataclass(frozen=True)
class CloseStream(Call):
    """Stop a stream early (the model stops generating)."""

    stream: Any

    def sync(self) -> None:
        if close := getattr(self.stream, "close", None):
            close()

    async def asynchronous(self) -> None:
        if close := getattr(self.stream, "aclose", None):
            await close()


@dataclass(frozen=True)
class Apply(Call):
    """`function(argument)` for a function given to each path in its own kind (an agent's model handler)."""

    function: Callable[[Any], Any]
    argument: Any

    def sync(self) -> Any:
        return self.function(self.argument)

    async def asynchronous(self) -> Any:
        return await cast(Awaitable[Any], self.function(self.argument))


@dataclass(frozen=True)
class _Returned:
    value: Any


def _with_return(steps: Steps[R]) -> Generator[Any, Any, None]:
    """The steps, then what they return as a last output (async generators cannot return a value)."""
    value = yield from steps
    yield _Returned(value)


def gathered(steps: Steps[R]) -> Steps[tuple[list[Any], R]]:
    """The steps run inside other steps, their calls passed on to the driver and their output kept: what they
    yield besides calls, and what they return (an agent's reply is the pipeline's chunks, merged)."""
    outputs: list[Any] = []
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            item = steps.throw(error) if error is not None else steps.send(result)
        except StopIteration as stop:
            return outputs, stop.value
        result, error = None, None
        if not isinstance(item, Call):
            outputs.append(item)
            continue
        try:
            result = yield item
        except Exception as exc:
            error = exc


def iterate(steps: Steps[Any]) -> Iterator[Any]:
    """Make the calls synchronously; yield everything else the steps yield."""
    result: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                item = steps.throw(error) if error is not None else steps.send(result)
            except StopIteration:
                return
            result, error = None, None
            if not isinstance(item, Call):
                yield item
                continue
            try:
                result = item.sync()
            except Exception as exc:
                error = exc
    finally:
        steps.close()


async def aiterate(steps: Steps[Any]) -> AsyncIterator[Any]:
    """`iterate`, awaiting each call."""
    result: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                item = steps.throw(error) if error is not None else steps.send(result)
            except StopIteration:
                return
            result, error = None, None
            if not isinstance(item, Call):
                yield item
                continue
            try:
                result = await item.asynchronous()
            except Exception as exc:
                error = exc
    finally:
        steps.close()


def run(steps: Steps[R]) -> R:
    """Make the calls synchronously and return what the steps return."""
    outputs = iterate(_with_return(steps))
    try:
        return _returned(next(outputs))
    finally:
        outputs.close()


async def arun(steps: Steps[R]) -> R:
    """Make the calls with `await` and return what the steps return."""
    outputs = aiterate(_with_return(steps))
    try:
        return _returned(await anext(outputs))
    finally:
        await outputs.aclose()


def _returned(item: Any) -> Any:
    if not isinstance(item, _Returned):
        raise TypeError(f"these steps yield output ({type(item).__name__}); read them with iterate or aiterate")
    return item.value
