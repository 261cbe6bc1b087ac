"""Human raters on the Client LLM's items: a blind rating web app (``psysim-rate``).

* :mod:`psysim.rating_app.items`: the items of a study, read from finished Inspect logs.
* :mod:`psysim.rating_app.template`: study templates (question and scale) as data files.
* :mod:`psysim.rating_app.db`: the study database (SQLite, with a schema version).
* :mod:`psysim.rating_app.study`: study creation, each rater's order, saving and export.
* :mod:`psysim.rating_app.app`: the web app raters use (Starlette and Jinja2; no admin over HTTP).
* :mod:`psysim.rating_app.cli`: ``psysim-rate create|serve|export|close``.

Like :mod:`psysim.analysis`, this package sits beside the layers: it reads logs written by the
tasks (their solver stores), and nothing in the harness imports it.
"""
