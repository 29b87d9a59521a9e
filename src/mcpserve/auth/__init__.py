"""Authentication and authorization for the HTTP transport: API keys, OAuth 2.1 resource server.

``setup.build_auth_gate`` composes the pieces from settings; the endpoint only talks to the
:class:`~mcpserve.auth.gate.AuthGate` it is handed.
"""
