"""mcpserve: the production runtime for Model Context Protocol servers.

Write tools with :class:`MCPServer` exactly as with the official SDK's ``MCPServer``; serve
them with ``mcpserve serve``.
"""

from typing import Any

from mcpserve._version import __version__
from mcpserve.errors import MCPServeError, ToolError
from mcpserve.principal import Principal
from mcpserve.server.app import (
    Completion,
    CompletionArgument,
    CompletionContext,
    MCPServer,
    PromptReference,
    ResourceTemplateReference,
)
from mcpserve.server.content import (
    AssistantMessage,
    Audio,
    EmbeddedResource,
    Image,
    Message,
    ResourceLink,
    ToolAnnotations,
    ToolResult,
    UserMessage,
)
from mcpserve.server.context import Context, ElicitationResult, InputRequired


def _serve(server: MCPServer, **options: Any) -> None:
    """MCPServer.run: the runtime, imported on first use (it pulls in the HTTP stack)."""
    from mcpserve.runtime import serve  # noqa: PLC0415 - keeps `import mcpserve` light

    serve(server, **options)


MCPServer.runner = _serve

__all__ = [
    "AssistantMessage",
    "Audio",
    "Completion",
    "CompletionArgument",
    "CompletionContext",
    "Context",
    "ElicitationResult",
    "EmbeddedResource",
    "Image",
    "InputRequired",
    "MCPServeError",
    "MCPServer",
    "Message",
    "Principal",
    "PromptReference",
    "ResourceLink",
    "ResourceTemplateReference",
    "ToolAnnotations",
    "ToolError",
    "ToolResult",
    "UserMessage",
    "__version__",
]
