"""The reviewer web app: FastAPI, server-rendered Jinja2 pages, a little progressive JavaScript.

``review.app.create_app(settings)`` builds it; ``complaintdesk serve`` runs it with uvicorn. It sits on
top of ``pipeline`` (the review operations are the service's) and ``storage`` (accounts, sessions).
"""
