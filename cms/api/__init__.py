"""The API infrastructure every app's REST API stands on: who the caller is (`auth`), the
one error body (`errors`) and the OpenAPI schema that documents it (`schema`).

It lives on the lowest floor so that content, journeys and delivery can all use it without
importing one another; channel tokens themselves (a model with taxonomy scope) stay in
`delivery`, which plugs its key lookup in through `auth.register_key_resolver`.
"""
