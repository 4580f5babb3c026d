"""Fakes of outside services that run for real on loopback, so client code runs unmodified."""

from tests.fakes.openai_server import FakeOpenAIServer, RecordedRequest, ScriptedReply, ToolCall

__all__ = ["FakeOpenAIServer", "RecordedRequest", "ScriptedReply", "ToolCall"]
